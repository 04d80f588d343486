--[[
  load-node: loadNode (SPEC 6.6): one node of the session. O(1).

  KEYS[1] nodes

  ARGV[1] encoded session id
  ARGV[2] the node id

  Reply:
    { 0, stored }, or { 0, false } when there is no such node; stored is
    `<pct(parentNodeId)>|<node JSON>`, the client strips the prefix
]]
return { 0, redis.call('HGET', K.nodes, ARGV[2]) }
