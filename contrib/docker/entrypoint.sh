#!/bin/sh
# Entrypoint of the pineconed container image.
#
# The configuration is /etc/pineconed/pineconed.toml when one is mounted
# there; otherwise pineconed.toml in the state volume, which the first start
# writes with "pineconed -genconf", changed to listen like stock Pinecone
# (TCP 65432, WebSocket 65433), so that it survives new containers. An
# existing file is never touched. The daemon itself creates the private key
# in the state volume on first start.
#
# Arguments starting with "-" are passed to the daemon
# (docker run IMAGE -publickey); anything else is run as a command instead
# (docker run IMAGE pineconectl peers).
#
# PINECONED_CONFIG, PINECONED_STATE_DIR and PINECONED_RUN_DIR override the
# usual paths; the image's tests use them.
set -eu

state_dir="${PINECONED_STATE_DIR:-/var/lib/pineconed}"
run_dir="${PINECONED_RUN_DIR:-/run/pineconed}"
mounted="${PINECONED_MOUNTED_CONFIG:-/etc/pineconed/pineconed.toml}"
if [ -n "${PINECONED_CONFIG:-}" ]; then
	config="$PINECONED_CONFIG"
elif [ -e "$mounted" ]; then
	config="$mounted"
else
	config="$state_dir/pineconed.toml"
fi

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
	exec "$@"
fi

if [ ! -e "$config" ]; then
	mkdir -p "$(dirname "$config")"
	generated="$config.genconf.$$"
	edited="$config.new.$$"
	trap 'rm -f "$generated" "$edited"' EXIT
	pineconed -genconf >"$generated"
	# The generated file has exactly one empty listener list, [peers] listen.
	sed 's|^listen = \[\]$|listen = ["tcp://[::]:65432", "ws://[::]:65433/"]|' "$generated" >"$edited"
	if ! grep -q '^listen = \["tcp://\[::\]:65432", "ws://\[::\]:65433/"\]$' "$edited"; then
		echo "entrypoint: could not set the listeners in the generated configuration" >&2
		exit 1
	fi
	mv "$edited" "$config"
	rm -f "$generated"
	trap - EXIT
	echo "entrypoint: wrote $config" >&2
fi

mkdir -p "$state_dir" "$run_dir"
if ! chmod 0700 "$state_dir" 2>/dev/null; then
	echo "entrypoint: cannot chmod $state_dir (owned by $(stat -c %U "$state_dir"), running as $(id -un)); give it to uid $(id -u)" >&2
	exit 1
fi
exec pineconed -config "$config" "$@"
