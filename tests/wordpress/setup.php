<?php
// Installs WordPress into the database wp-config.php names, activates the Akismet plugin with a
// hamgate key, and sets comment moderation so that WordPress itself holds nothing: every
// decision the test sees comes from Akismet, that is from hamgate.
// usage: php setup.php WP_DIR SITE_URL KEY
define( 'WP_INSTALLING', true );
[ , $dir, $url, $key ] = $argv;
$_SERVER['HTTP_HOST'] = parse_url( $url, PHP_URL_HOST ) . ':' . parse_url( $url, PHP_URL_PORT );
require $dir . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
$r = wp_install( 'hamgate test blog', 'admin', 'admin@example.org', true, '', 'test-password' );
update_option( 'siteurl', $url );
update_option( 'home', $url );
update_option( 'comment_moderation', 0 );
update_option( 'comment_previously_approved', 0 );
update_option( 'require_name_email', 1 );
update_option( 'comment_max_links', 10 );
update_option( 'wordpress_api_key', $key );
// Blatant spam to the spam folder too (not discarded), so the test can see it.
update_option( 'akismet_strictness', '0' );
$activated = activate_plugin( 'akismet/akismet.php' );
echo json_encode( [ 'user' => $r['user_id'], 'activated' => ! is_wp_error( $activated ), 'plugins' => get_option( 'active_plugins' ) ] ), "\n";
