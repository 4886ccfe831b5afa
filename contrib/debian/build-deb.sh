#!/bin/sh
# Builds the Debian package of pineconed into a directory (default dist/):
#
#   contrib/debian/build-deb.sh [OUTDIR]
#
# VERSION (default: the git tag on HEAD, else 0.0.0~git<date>.<commit>)
# becomes the binaries' version (pineconed -version, pineconectl version)
# and, without a leading v, the package version. GOARCH picks the
# architecture. nfpm (pinned below) comes from the Go module proxy.
set -eu

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$repo/dist}" && cd "${1:-$repo/dist}" && pwd)
cd "$repo"

if [ -z "${VERSION:-}" ]; then
  VERSION=$(git describe --tags --exact-match 2>/dev/null ||
    echo "0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short HEAD)")
fi
DEB_VERSION=${VERSION#v}
DEB_ARCH=${GOARCH:-$(go env GOARCH)}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
export VERSION DEB_VERSION DEB_ARCH STAGE

ldflags="-s -w -X github.com/pineconed/pineconed/internal/version.release=$VERSION"
for cmd in pineconed pineconectl; do
  CGO_ENABLED=0 GOOS=linux GOARCH=$DEB_ARCH go build -trimpath -ldflags "$ldflags" -o "$STAGE/$cmd" "./cmd/$cmd"
done

# Man pages from the binaries' own help (built for this machine to run).
go build -o "$STAGE/mangen" ./internal/manpage/mangen
if [ "$DEB_ARCH" = "$(go env GOHOSTARCH)" ]; then
  d="$STAGE/pineconed" c="$STAGE/pineconectl"
else
  go build -ldflags "$ldflags" -o "$STAGE/host-pineconed" ./cmd/pineconed
  go build -ldflags "$ldflags" -o "$STAGE/host-pineconectl" ./cmd/pineconectl
  d="$STAGE/host-pineconed" c="$STAGE/host-pineconectl"
fi
"$STAGE/mangen" -pineconed "$d" -pineconectl "$c" -version "$VERSION" -out "$STAGE/man"
gzip -9n "$STAGE"/man/*

# The unit as in contrib/systemd, with the binary where the package puts it.
sed 's|^ExecStart=/usr/local/bin/pineconed|ExecStart=/usr/bin/pineconed|' \
  contrib/systemd/pineconed.service > "$STAGE/pineconed.service"
grep -q '^ExecStart=/usr/bin/pineconed$' "$STAGE/pineconed.service"

cp contrib/systemd/pineconed.sysusers config.example.toml LICENSE \
  contrib/prometheus/pineconed.rules.yml contrib/grafana/pineconed.json \
  "$here/postinst" "$here/prerm" "$here/postrm" "$STAGE/"

# go run resolves nfpm outside this module; nfpm reads sources from $STAGE.
nfpm=$STAGE/nfpm
GOBIN=$STAGE go install "$NFPM"
cd "$STAGE"
"$nfpm" package --config "$here/nfpm.yaml" --packager deb --target "$out/"
ls "$out"/pineconed_"$DEB_VERSION"_"$DEB_ARCH".deb
