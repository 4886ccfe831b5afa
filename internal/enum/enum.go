// Package enum names the small enumerations the daemon counts and labels
// events with (drop reasons, counters, peering origins, TUN reasons): each
// is a uint8 that indexes a fixed table of stable names, the names that
// metrics, admin replies and logs carry. The helpers here are the one
// place that turns a value into its name, so that a value outside its
// table (a bug) gets a name that says so instead of an index panic.
//
// It sits beside the data path, not in it: a counter is incremented by
// index; names are looked up only when metrics or admin replies are built.
package enum

import "strconv"

// Name is names[v], or prefix, "_" and v's number for a value outside the
// table ("drop_17"), so that a stray value stays visible and distinct.
func Name[E ~uint8](names []string, v E, prefix string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return prefix + "_" + strconv.Itoa(int(v))
}

// NameOr is names[v], or unknown for a value outside the table: for
// enumerations whose out-of-range values are all counted as one.
func NameOr[E ~uint8](names []string, v E, unknown string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return unknown
}
