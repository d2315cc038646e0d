<?php
/**
 * Plugin Name: hamgate for Akismet
 * Description: Sends the Akismet plugin's calls to your own hamgate server, so the blog keeps
 *   Akismet's screens (spam folder, "Not spam", history) while every decision comes from, and
 *   teaches, hamgate. Comments hamgate holds go to the moderation queue.
 * Version: 1.0
 *
 * A must-use plugin: copy this file to wp-content/mu-plugins/ and set in wp-config.php
 *   define( 'HAMGATE_URL', 'http://127.0.0.1:8080' );   // hamgate's HTTP address
 * then give the Akismet plugin a hamgate site key as its API key.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

/**
 * Answers the Akismet plugin's requests to rest.akismet.com (it hard-codes that host) with
 * hamgate's answers, through WordPress's documented `pre_http_request` filter.
 */
function hamgate_pre_http_request( $preempt, $args, $url ) {
	if ( ! defined( 'HAMGATE_URL' ) || false !== $preempt ) {
		return $preempt;
	}
	$parts = wp_parse_url( $url );
	if ( empty( $parts['host'] ) || ! preg_match( '/(^|\.)rest\.akismet\.com$/i', $parts['host'] ) ) {
		return $preempt;
	}
	$target = rtrim( HAMGATE_URL, '/' ) . ( isset( $parts['path'] ) ? $parts['path'] : '/' );
	if ( isset( $parts['query'] ) ) {
		$target .= '?' . $parts['query'];
	}
	// Older Akismet versions put the key in the host name (KEY.rest.akismet.com): keep it.
	$host_key = preg_replace( '/\.?rest\.akismet\.com$/i', '', $parts['host'] );
	if ( '' !== $host_key ) {
		$body = isset( $args['body'] ) ? $args['body'] : '';
		if ( is_array( $body ) ) {
			$body['api_key'] = $host_key;
		} else {
			$body .= ( '' === $body ? '' : '&' ) . 'api_key=' . rawurlencode( $host_key );
		}
		$args['body'] = $body;
	}
	$args['sslverify'] = false !== strpos( $target, 'https://' ) ? ( isset( $args['sslverify'] ) ? $args['sslverify'] : true ) : false;
	$response = wp_remote_request( $target, $args );
	if ( ! is_wp_error( $response ) && 'hold' === wp_remote_retrieve_header( $response, 'x-hamgate-verdict' ) ) {
		$GLOBALS['hamgate_last_verdict'] = 'hold';
	}
	return $response;
}
add_filter( 'pre_http_request', 'hamgate_pre_http_request', 10, 3 );

/**
 * A comment hamgate held waits in the moderation queue: never published, never dropped.
 * (Akismet's answer for it is `true`, which would file it as spam.)
 */
function hamgate_hold_for_moderation( $approved ) {
	if ( isset( $GLOBALS['hamgate_last_verdict'] ) && 'hold' === $GLOBALS['hamgate_last_verdict'] ) {
		unset( $GLOBALS['hamgate_last_verdict'] );
		if ( 'trash' !== $approved ) {
			return 0;
		}
	}
	return $approved;
}
add_filter( 'pre_comment_approved', 'hamgate_hold_for_moderation', 99 );
