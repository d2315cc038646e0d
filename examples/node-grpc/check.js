#!/usr/bin/env node
// Checks one comment with hamgate over gRPC, acts on the verdict, and sends a moderator's label
// back by check_id. Prints one JSON line at the end with what happened.
//
//   node check.js [--addr HOST:PORT] [--key KEY] [--label spam|ham|none] [COMMENT TEXT]
//
// The address and key default to $HAMGATE_ADDR and $HAMGATE_API_KEY. Exit codes: 0 done,
// 2 bad key, 3 server unreachable, 1 any other error.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = path.join(__dirname, '..', '..', 'proto');

function parseArgs(argv) {
  const opts = {
    addr: process.env.HAMGATE_ADDR || '127.0.0.1:50051',
    key: process.env.HAMGATE_API_KEY || '',
    label: 'auto',
    comment: 'This song is amazing, I still listen to it every day',
  };
  const words = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--addr') opts.addr = argv[++i];
    else if (a === '--key') opts.key = argv[++i];
    else if (a === '--label') opts.label = argv[++i];
    else words.push(a);
  }
  if (words.length) opts.comment = words.join(' ');
  return opts;
}

// Ends the program with a clear message on stderr, the JSON line on stdout, and `code`.
function fail(code, error, message) {
  console.error(`error: ${message}`);
  console.log(JSON.stringify({ ok: false, error, message }));
  process.exit(code);
}

function failRpc(err) {
  if (err.code === grpc.status.UNAUTHENTICATED || err.code === grpc.status.PERMISSION_DENIED) {
    fail(2, 'bad_key', `hamgate refused the API key: ${err.details}`);
  }
  if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
    fail(3, 'unreachable', `cannot reach hamgate: ${err.details}`);
  }
  fail(1, 'rpc_error', `${grpc.status[err.code] || err.code}: ${err.details}`);
}

// Calls `method` with the key and a 5 s deadline; resolves to the response.
function call(client, method, request, key) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  const deadline = new Date(Date.now() + 5000);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!opts.key) fail(2, 'bad_key', 'no API key: pass --key KEY or set HAMGATE_API_KEY');

  // proto-loader resolves google/protobuf/timestamp.proto and duration.proto itself (protobufjs
  // bundles the well-known types), so only the hamgate proto directory is needed.
  const definition = protoLoader.loadSync('hamgate/v1/filter.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = grpc.loadPackageDefinition(definition).hamgate.v1;
  const client = new v1.CommentFilter(opts.addr, grpc.credentials.createInsecure());

  let check;
  try {
    check = await call(client, 'Check', {
      comment: {
        content: opts.comment,
        author_name: 'Node Example',
        comment_type: 'COMMENT_TYPE_COMMENT',
      },
      post: { permalink: 'https://blog.example.org/posts/hello' },
      client: { ip: '198.51.100.7', user_agent: 'hamgate-example-node-grpc' },
      external_id: 'node-1',
    }, opts.key);
  } catch (err) {
    failRpc(err);
  }

  let action;
  switch (check.verdict) {
    case 'VERDICT_ACCEPT':
      action = 'publish';
      console.error('ACCEPT: publish the comment');
      break;
    case 'VERDICT_REJECT':
      action = check.discard ? 'discard' : 'spam_folder';
      console.error(`REJECT: spam (${action === 'discard' ? 'blatant, drop it' : 'keep it in the spam folder'})`);
      break;
    default:
      // HOLD (and UNSPECIFIED, which a client treats as HOLD): a person decides.
      action = 'moderation_queue';
      console.error('HOLD: put the comment in the moderation queue');
  }
  console.error(`spam probability ${check.spam_probability.toFixed(3)}, check_id ${check.check_id}`);
  if (check.degraded) {
    console.error('warning: hamgate answered degraded (an optional part such as Redis is down)');
  }

  // The moderator's label: given, or in this demo the verdict's own (HOLD approved as ham).
  let label = opts.label;
  if (label === 'auto') label = check.verdict === 'VERDICT_REJECT' ? 'spam' : 'ham';
  let feedback = null;
  if (label !== 'none') {
    if (label !== 'spam' && label !== 'ham') fail(1, 'usage', `--label must be spam, ham or none, not ${label}`);
    try {
      const fb = await call(client, 'Feedback', {
        check_id: check.check_id,
        label: label === 'spam' ? 'LABEL_SPAM' : 'LABEL_HAM',
        moderator_id: 'node-example',
        reason: 'example',
      }, opts.key);
      feedback = { label, label_seq: String(fb.label_seq), learned: fb.learned, note: fb.note };
      console.error(`feedback ${label} accepted (label #${fb.label_seq})`);
    } catch (err) {
      failRpc(err);
    }
  }
  client.close();

  console.log(JSON.stringify({
    ok: true,
    verdict: check.verdict.replace('VERDICT_', ''),
    action,
    spam_probability: check.spam_probability,
    discard: check.discard,
    degraded: check.degraded,
    check_id: check.check_id,
    model_version: check.model_version,
    feedback,
  }));
}

main().catch((err) => fail(1, 'error', String(err && err.stack ? err.stack : err)));
