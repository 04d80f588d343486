-- loadNode (SPEC 6.6): one node of the session, verbatim, or nil. O(1).
-- ARGV[2] = the node id.
-- @include keys
return { 0, redis.call('HGET', K.nodes, ARGV[2]) }
