-- loadNode (SPEC 6.6): one node of the session, verbatim. O(1).
--
-- KEYS: the standard per-session block (docs/KEYS.md); reads nodes.
-- ARGV[1] encoded session id
-- ARGV[2] the node id
-- Returns { 0, nodeJson } or { 0 } when there is no such node
-- @include keys
return { 0, redis.call('HGET', K.nodes, ARGV[2]) }
