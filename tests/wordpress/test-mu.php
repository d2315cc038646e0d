<?php
// Test-only must-use plugin: each visitor's IP from X-Test-IP (the built-in server sees every
// visitor as 127.0.0.1), and no comment flood limit (the test posts quickly from one machine).
if ( isset( $_SERVER['HTTP_X_TEST_IP'] ) && filter_var( $_SERVER['HTTP_X_TEST_IP'], FILTER_VALIDATE_IP ) ) {
	$_SERVER['REMOTE_ADDR'] = $_SERVER['HTTP_X_TEST_IP'];
}
add_filter( 'wp_is_comment_flood', '__return_false', 99 );
remove_action( 'check_comment_flood', 'check_comment_flood_db', 10 );
