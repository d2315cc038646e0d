<?php
// Prints every comment with its status as JSON; with `approve ID` or `spam ID` first marks that
// comment as a moderator would in wp-admin ("Not spam" / "Spam"), which the Akismet plugin
// reports to its service: here, hamgate.
// usage: php comments.php WP_DIR SITE_URL [approve|spam ID]
[ , $dir, $url ] = $argv;
$_SERVER['HTTP_HOST'] = parse_url( $url, PHP_URL_HOST ) . ':' . parse_url( $url, PHP_URL_PORT );
require $dir . '/wp-load.php';
if ( isset( $argv[4] ) ) {
	// As the "Not Spam" / "Spam" links under a comment in wp-admin send it: the Akismet plugin
	// reports a status change only when the request says a moderator made it.
	$_GET['action'] = 'spam' === $argv[3] ? 'spamcomment' : 'unspamcomment';
	wp_set_current_user( 1 );
	$ok = wp_set_comment_status( (int) $argv[4], $argv[3] );
	fwrite( STDERR, "set {$argv[4]} to {$argv[3]}: " . var_export( $ok, true ) . "\n" );
}
$out = [];
foreach ( get_comments( [ 'status' => 'all', 'type' => 'comment', 'orderby' => 'comment_ID', 'order' => 'ASC' ] ) as $c ) {
	$out[] = [ 'id' => (int) $c->comment_ID, 'content' => $c->comment_content, 'approved' => $c->comment_approved ];
}
foreach ( get_comments( [ 'status' => 'spam', 'orderby' => 'comment_ID', 'order' => 'ASC' ] ) as $c ) {
	$out[] = [ 'id' => (int) $c->comment_ID, 'content' => $c->comment_content, 'approved' => $c->comment_approved ];
}
echo json_encode( $out ), "\n";
