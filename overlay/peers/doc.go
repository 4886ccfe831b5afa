// Package peers decides whom this node peers with and gets the connections
// made: listeners that accept inbound peerings (tcp://, ws://, wss://),
// static peers dialled and re-dialled with exponential back-off, key pinning
// (?key= on a static peer URI), allowed_keys for peers we did not choose,
// self-connection detection and the max_peers cap.
//
// In the data path it is the step before overlay/link: every connection,
// whichever way it was made, goes through Manager.Handle, which runs the
// handshake, applies the checks above, attaches the peering to the node
// (the Switch, implemented by package overlay) and runs the link until it
// ends. LAN discovery (overlay/multicast) hands its connections to the same
// Handle, so one Manager knows every peering: max_peers counts them all, and
// Peers lists them all for the admin API.
//
// Listeners and static peers can both be added and removed while the
// manager runs (AddListener/RemoveListener, Add/Remove), which is how a
// SIGHUP reload applies peers.listen and peers.static. Removing a listener
// only stops it accepting: peerings it accepted earlier are links of their
// own and stay up. Removing a static peer ends its peering.
//
// URIs are parsed once, with peeruri.ParsePeer and peeruri.ParseListen, so the
// configuration file, SIGHUP reload and the admin API accept the same syntax.
package peers
