#!/usr/bin/env bash
# Starts a throwaway WordPress (Debian's package, with its Akismet plugin) wired to a hamgate
# server: MariaDB on a private socket, the files copied to WORK_DIR/wp, hamgate's must-use plugin
# (deploy/wordpress/hamgate.php) and the test's, WordPress installed and Akismet activated with
# KEY, and PHP's built-in server on 127.0.0.1:WP_PORT. Prints `ready` when it serves; the caller
# kills the process group to stop everything.
#
# usage: tests/wordpress/start.sh WORK_DIR WP_PORT HAMGATE_HTTP_URL KEY
set -euo pipefail
WORK="$1"; PORT="$2"; HAMGATE="$3"; KEY="$4"
export PATH="$PATH:/usr/sbin"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DB="$WORK/db"; SOCK="$WORK/mysql.sock"; WP="$WORK/wp"; URL="http://127.0.0.1:$PORT"

mkdir -p "$DB"
mariadb-install-db --no-defaults --datadir="$DB" --auth-root-authentication-method=normal \
    --skip-test-db --user="$(id -un)" >"$WORK/db-install.log" 2>&1
mariadbd --no-defaults --datadir="$DB" --socket="$SOCK" --skip-networking \
    --pid-file="$WORK/mariadb.pid" --user="$(id -un)" >"$WORK/mariadb.log" 2>&1 &
for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && mariadb --no-defaults --socket="$SOCK" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.1
done
mariadb --no-defaults --socket="$SOCK" -uroot -e 'CREATE DATABASE wp'

# A copy, not symlinks: PHP resolves __FILE__ through links, and Debian's wp-config.php reads
# /etc/wordpress; this one has its own config.
cp -r /usr/share/wordpress "$WP"
rm -f "$WP/.htaccess"
mkdir -p "$WP/wp-content/mu-plugins" "$WP/wp-content/uploads"
cp "$ROOT/deploy/wordpress/hamgate.php" "$HERE/test-mu.php" "$WP/wp-content/mu-plugins/"
cat >"$WP/wp-config.php" <<PHP
<?php
define( 'DB_NAME', 'wp' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', 'localhost:$SOCK' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'WP_CONTENT_DIR', __DIR__ . '/wp-content' );
define( 'DISABLE_WP_CRON', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'HAMGATE_URL', '$HAMGATE' );
\$table_prefix = 'wp_';
if ( ! defined( 'ABSPATH' ) ) { define( 'ABSPATH', __DIR__ . '/' ); }
require_once ABSPATH . 'wp-settings.php';
PHP
php "$HERE/setup.php" "$WP" "$URL" "$KEY" >"$WORK/setup.json"
php -S "127.0.0.1:$PORT" -t "$WP" >"$WORK/php.log" 2>&1 &
for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$URL/wp-login.php" && break
    sleep 0.1
done
echo ready
wait
