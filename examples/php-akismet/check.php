<?php
// Checks one comment with hamgate over its Akismet-compatible API, acts on the verdict, and
// sends a moderator's label back (submit-spam / submit-ham). Prints one JSON line at the end.
//
//   php check.php [--http URL] [--key KEY] [--label spam|ham|none] [COMMENT TEXT]
//
// The URL and key default to $HAMGATE_HTTP and $HAMGATE_API_KEY. Needs PHP's curl extension.
// Exit codes: 0 done, 2 bad key, 3 server unreachable, 1 any other error.

const DEFAULT_COMMENT = 'This song is amazing, I still listen to it every day';
const BLOG = 'https://blog.example.org/';

// Ends the program: a clear message on stderr, the JSON line on stdout, exit $code.
function fail(int $code, string $error, string $message): void
{
    fwrite(STDERR, "error: $message\n");
    echo json_encode(['ok' => false, 'error' => $error, 'message' => $message], JSON_UNESCAPED_SLASHES), "\n";
    exit($code);
}

// POSTs the form to $base/1.1/$method; returns [body, lowercase headers].
function akismet(string $base, string $method, array $fields): array
{
    $headers = [];
    $ch = curl_init(rtrim($base, '/') . '/1.1/' . $method);
    curl_setopt_array($ch, [
        CURLOPT_POST => true,
        CURLOPT_POSTFIELDS => http_build_query($fields),
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => 5,
        CURLOPT_TIMEOUT => 10,
        CURLOPT_USERAGENT => 'hamgate-example-php/1.0 | Akismet/1.0',
        CURLOPT_HEADERFUNCTION => function ($ch, $line) use (&$headers) {
            $parts = explode(':', $line, 2);
            if (count($parts) === 2) {
                $headers[strtolower(trim($parts[0]))] = trim($parts[1]);
            }
            return strlen($line);
        },
    ]);
    $body = curl_exec($ch);
    if ($body === false) {
        $err = curl_error($ch);
        fail(3, 'unreachable', "cannot reach hamgate at $base: $err");
    }
    $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    $body = trim($body);
    if ($body === 'invalid') {
        $help = $headers['x-akismet-debug-help'] ?? 'invalid key';
        fail(2, 'bad_key', "hamgate refused the API key: $help");
    }
    if ($status !== 200) {
        $help = $headers['x-akismet-debug-help'] ?? $body;
        fail(1, 'http_error', "hamgate answered $status to $method: $help");
    }
    return [$body, $headers];
}

$opts = [
    'http' => getenv('HAMGATE_HTTP') ?: 'http://127.0.0.1:8080',
    'key' => getenv('HAMGATE_API_KEY') ?: '',
    'label' => 'auto',
];
$words = [];
for ($i = 1; $i < $argc; $i++) {
    $a = $argv[$i];
    if (in_array($a, ['--http', '--key', '--label'], true) && $i + 1 < $argc) {
        $opts[substr($a, 2)] = $argv[++$i];
    } else {
        $words[] = $a;
    }
}
$comment = $words ? implode(' ', $words) : DEFAULT_COMMENT;
if (!function_exists('curl_init')) {
    fail(1, 'no_curl', "PHP's curl extension is missing (Debian: apt-get install php-curl)");
}
if ($opts['key'] === '') {
    fail(2, 'bad_key', 'no API key: pass --key KEY or set HAMGATE_API_KEY');
}
if (strpos($opts['http'], '://') === false) {
    $opts['http'] = 'http://' . $opts['http'];
}

// The fields Akismet's comment-check takes; submit-spam/submit-ham take the same.
$fields = [
    'api_key' => $opts['key'],
    'blog' => BLOG,
    'user_ip' => '198.51.100.9',
    'user_agent' => 'Mozilla/5.0 (hamgate PHP example)',
    'referrer' => 'https://blog.example.org/posts/hello',
    'permalink' => 'https://blog.example.org/posts/hello',
    'comment_type' => 'comment',
    'comment_author' => 'PHP Example',
    'comment_content' => $comment,
];

[$valid] = akismet($opts['http'], 'verify-key', ['api_key' => $opts['key'], 'blog' => BLOG]);

[$answer, $headers] = akismet($opts['http'], 'comment-check', $fields);
if ($answer !== 'true' && $answer !== 'false') {
    fail(1, 'unexpected', "comment-check answered \"$answer\"");
}
$spam = $answer === 'true';
// Akismet has two answers; hamgate says its own three in X-hamgate-verdict. A held comment is
// `true` by default: read the header to put it in the moderation queue instead of the spam folder.
$verdict = $headers['x-hamgate-verdict'] ?? ($spam ? 'reject' : 'accept');
$discard = ($headers['x-akismet-pro-tip'] ?? '') === 'discard';
switch ($verdict) {
    case 'accept':
        $action = 'publish';
        fwrite(STDERR, "false (accept): publish the comment\n");
        break;
    case 'reject':
        $action = $discard ? 'discard' : 'spam_folder';
        fwrite(STDERR, "true (reject): spam, " . ($discard ? 'blatant, drop it' : 'keep it in the spam folder') . "\n");
        break;
    default:
        $action = 'moderation_queue';
        fwrite(STDERR, "$answer (hold): put the comment in the moderation queue\n");
}

// The moderator's label: given, or in this demo the verdict's own (HOLD approved as ham).
$label = $opts['label'];
if ($label === 'auto') {
    $label = $verdict === 'reject' ? 'spam' : 'ham';
}
$feedback = null;
if ($label !== 'none') {
    if ($label !== 'spam' && $label !== 'ham') {
        fail(1, 'usage', "--label must be spam, ham or none, not $label");
    }
    [$thanks] = akismet($opts['http'], "submit-$label", $fields);
    $feedback = ['label' => $label, 'response' => $thanks];
    fwrite(STDERR, "submit-$label: $thanks\n");
}

echo json_encode([
    'ok' => true,
    'key' => $valid,
    'spam' => $spam,
    'verdict' => $verdict,
    'action' => $action,
    'discard' => $discard,
    'probability' => isset($headers['x-hamgate-probability']) ? (float) $headers['x-hamgate-probability'] : null,
    'check_id' => $headers['x-hamgate-check-id'] ?? null,
    'feedback' => $feedback,
], JSON_UNESCAPED_SLASHES), "\n";
