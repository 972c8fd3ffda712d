// Loop-thread synchronisation primitives (see <uvaio/sync.hpp>).
