// Package link runs one Pinecone peering over a reliable byte stream: the
// 104-byte handshake, then a framed reader and a batching writer with the
// protocol's keepalives and deadlines (docs/protocol.md §1).
//
// In the data path it sits between the socket and the node. Inbound, the
// reader goroutine reads exactly one frame at a time (10 header bytes checked
// by wire.ParseHeader, then the body) and hands it to the node's Receive. It
// reads the next frame only when Receive has returned, so a peer that sends
// faster than the node consumes is slowed down by TCP flow control instead of
// filling our memory. Outbound, the node queues encoded frames with Send;
// the writer goroutine drains the protocol queue before the traffic queue,
// writes into a buffer and flushes only when both queues are empty, so a
// busy link pays one system call for many frames. The traffic queue is a
// fair queue (deficit round robin over a few buckets chosen by the frame's
// keys, small frames apart from large ones), so a bulk transfer's backlog
// does not sit in front of every other frame; on TCP the kernel's unsent
// queue is kept short (NotSentLowat), so the backlog waits in our queues,
// where that order applies, rather than in the socket's.
//
// Deadlines follow one contract on every transport: a read deadline is set
// before each frame is read and cleared once it has been read (a frame
// already whole in the read buffer needs none: it has arrived), a write
// deadline is set before each write to the connection and cleared once the
// write returns, so an idle link holds no deadline at all. Renewing alone
// is not enough: on TCP an expired deadline with no operation in progress
// is harmless, but the WebSocket wrapper (websocket.NetConn) fails the next
// write, and closes the connection, when a stale write deadline expires
// around it; with the write timeout equal to the keepalive interval every
// keepalive raced the previous write's deadline (issue 10). The stock
// router clears its deadlines the same way.
//
// # Memory bound
//
// What a peer that stops reading can make us hold is bounded per link by
// Config.MaxHeldBytes: the protocol queue's 1 MiB and the traffic queue's
// 4 MiB of buffer bytes (cap, not len: a queued frame keeps its whole
// buffer alive, so Send first moves small frames into small pool buffers),
// the 64 KiB writer and reader buffers, and the one frame each goroutine
// is working on. That is 5.26 MiB per link with the defaults; frames that
// do not fit are dropped and counted (Stats.Drops). The traffic queue's
// 512-frame bound admits at most 1 MiB of 1 280-byte packets.
//
// The stream can be TCP, a WebSocket carrying binary messages (see
// DialWebSocket and WebSocketHandler), or anything else that is a net.Conn.
// Who dials, listens and decides which peers to keep is overlay/peers; what
// the frames mean is the node's business (package overlay).
package link
