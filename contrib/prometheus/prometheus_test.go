// Package prometheus_test checks the alert rules with Prometheus's own
// promtool (syntax, and the unit tests in pineconed.rules.test.yml) and
// against the metrics pineconed really exports.
package prometheus_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/admin/metrics/metricstest"
)

const (
	rulesFile = "pineconed.rules.yml"
	testsFile = "pineconed.rules.test.yml"
)

// TestPromtool runs promtool check rules and promtool test rules.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus); CI installs it")
	}
	// The README's two commands, from the repository root.
	for _, args := range [][]string{{"check", "rules", "contrib/prometheus/" + rulesFile}, {"test", "rules", "contrib/prometheus/" + testsFile}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRulesUseRealMetrics fails when a rule or its tests name a metric
// pineconed does not export, and when an alert the issue asks for is
// missing or untested.
func TestRulesUseRealMetrics(t *testing.T) {
	for _, f := range []string{rulesFile, testsFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		unknown, err := metricstest.Unknown(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if len(unknown) > 0 {
			t.Errorf("%s uses metrics pineconed does not export: %v", f, unknown)
		}
	}
	// The check itself notices a name that does not exist.
	if u, err := metricstest.Unknown("rate(pineconed_peers[5m]) pineconed_lookup_duration_seconds_bucket pineconed_no_such_total"); err != nil ||
		len(u) != 1 || u[0] != "pineconed_no_such_total" {
		t.Errorf("Unknown found %v (%v), want [pineconed_no_such_total]", u, err)
	}
	rules, _ := os.ReadFile(rulesFile)
	tests, _ := os.ReadFile(testsFile)
	for _, alert := range []string{"PineconedNoPeers", "PineconedTreeRootFlapping", "PineconedHighDropRate",
		"PineconedLookupFailures", "PineconedHandshakeFailures"} {
		if !strings.Contains(string(rules), "alert: "+alert+"\n") {
			t.Errorf("%s has no alert %s", rulesFile, alert)
		}
		if !strings.Contains(string(tests), "alertname: "+alert+"\n") {
			t.Errorf("%s does not test %s", testsFile, alert)
		}
	}
}
