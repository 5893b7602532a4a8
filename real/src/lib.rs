//! rmq-real: the same state machines over real files and sockets.
