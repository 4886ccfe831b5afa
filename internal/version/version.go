// Package version says which build of pineconed and pineconectl is
// running: both binaries print it (pineconed -version, pineconectl
// version), the daemon reports it in getSelf, its startup log and
// pineconed_build_info.
//
// A release build sets it with the linker:
//
//	go build -ldflags "-X github.com/pineconed/pineconed/internal/version.release=v1.2.3" ./cmd/pineconed
//
// Without that, the main module's version from the build info is used:
// the tag for `go install github.com/pineconed/pineconed/cmd/pineconed@v1.2.3`,
// or the version go build derives from the checkout's tag and commit. A
// build that knows neither says "devel".
package version

import "runtime/debug"

// release is set at link time by release builds (see the package doc).
var release string

// String returns the version of this build.
func String() string {
	return resolve(release, debug.ReadBuildInfo)
}

// resolve picks the version: the linker's, else the module's (unless it is
// the "(devel)" placeholder), else "devel".
func resolve(linked string, info func() (*debug.BuildInfo, bool)) string {
	if linked != "" {
		return linked
	}
	if bi, ok := info(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
