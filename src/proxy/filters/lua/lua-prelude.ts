// The stream handle API of Envoy's Lua filter, written in Lua over a few host functions (lua-host.ts).
// It runs once in each script's state, before the script. The handle objects are built once per
// state: the host functions act on the stream whose coroutine is running (one at a time). Waiting
// (body(), trailers(), httpCall()) is a coroutine.yield of a code the filter acts on, then resumes.
export const YIELD_BODY = 1;
export const YIELD_CALL = 2;
export const YIELD_RESPOND = 3;

/** Header maps by number: the host functions take one of these. */
export const KIND_REQUEST_HEADERS = 0;
export const KIND_RESPONSE_HEADERS = 1;
export const KIND_REQUEST_TRAILERS = 2;
export const KIND_RESPONSE_TRAILERS = 3;

/** Envoy stream handle methods rig proxy does not have: calling one is a Lua error that says so. */
const UNSUPPORTED = ['importPublicKey', 'verifySignature', 'setUpstreamOverrideHost', 'filterContext', 'connectionStreamInfo', 'virtualHost', 'route', 'upstreamHost', 'setHttp1ReasonPhrase'];
const UNSUPPORTED_STREAM_INFO = ['downstreamSslConnection', 'dynamicTypedMetadata', 'filterState', 'routeName', 'virtualClusterName'];
const UNSUPPORTED_SSL = ['peerCertificateValidated', 'uriSanLocalCertificate', 'sha256PeerCertificateDigest', 'serialNumberPeerCertificate', 'issuerPeerCertificate', 'subjectPeerCertificate', 'subjectLocalCertificate', 'urlEncodedPemEncodedPeerCertificate', 'urlEncodedPemEncodedPeerCertificateChain', 'dnsSansPeerCertificate', 'dnsSansLocalCertificate', 'validFromPeerCertificate', 'expirationPeerCertificate', 'sessionId', 'ciphersuiteId', 'ciphersuiteString', 'tlsVersion', 'parsedSubjectPeerCertificate', 'oidsPeerCertificate', 'oidsLocalCertificate'];

const list = (names: readonly string[]): string => names.map((n) => `'${n}'`).join(', ');

export const PRELUDE = `
local H = {}
for k, v in pairs(_G) do
  if type(k) == 'string' and k:sub(1, 4) == '__h_' then H[k:sub(5)] = v; _G[k] = nil end
end
local yield = coroutine.yield
unpack = unpack or table.unpack
loadstring = loadstring or load
-- The VM's os.exit would end the whole proxy process.
os.exit = function() error('os.exit() is not supported in rig proxy', 2) end

-- require() reads modules from the real file system along package.path (the VM's own is empty).
package.path = __lua_path
__lua_path = nil
package.searchers[2] = function(name)
  local file = name:gsub('%.', '/')
  local tried = {}
  for template in package.path:gmatch('[^;]+') do
    local path = template:gsub('%?', file)
    local code = H.readfile(path)
    if code then
      local chunk, err = load(code, '@' .. path)
      if not chunk then error(err, 0) end
      return chunk, path
    end
    tried[#tried + 1] = "\\n\\tno file '" .. path .. "'"
  end
  return table.concat(tried)
end

local function unsupported(what, names, t)
  for _, n in ipairs(names) do
    t[n] = function() error(what .. n .. '() is not supported in rig proxy', 2) end
  end
  return t
end

local function class(t) t.__index = t; return t end

local Headers = class({})
function Headers:get(k) return H.hget(self.kind, k) end
function Headers:getAtIndex(k, i) return H.hgetidx(self.kind, k, i) end
function Headers:getNumValues(k) return H.hnum(self.kind, k) end
function Headers:add(k, v) H.hadd(self.kind, k, v) end
function Headers:replace(k, v) H.hreplace(self.kind, k, v) end
function Headers:remove(k) H.hremove(self.kind, k) end
function Headers:setHttp1ReasonPhrase() error('setHttp1ReasonPhrase() is not supported in rig proxy', 2) end
local function iterate(kvs)
  local i = -1
  return function()
    i = i + 2
    if kvs[i] ~= nil then return kvs[i], kvs[i + 1] end
  end
end
Headers.__pairs = function(self) return iterate(H.hlist(self.kind)) end
local function headerMap(kind) return setmetatable({ kind = kind }, Headers) end

local Buffer = class({})
function Buffer:length() return H.blen(self.dir) end
function Buffer:getBytes(index, length) return H.bget(self.dir, index, length) end
function Buffer:setBytes(s) return H.bset(self.dir, s) end

local Metadata = class({})
function Metadata:get(k) local t = H.meta(); if t then return t[k] end end
Metadata.__pairs = function() return pairs(H.meta() or {}) end

local DynamicMetadata = class({})
function DynamicMetadata:get(filter) return H.dmget(filter) end
function DynamicMetadata:set(filter, key, value) H.dmset(filter, key, value) end
DynamicMetadata.__pairs = function() return pairs(H.dmlist()) end
local dynamicMetadata = setmetatable({}, DynamicMetadata)

local StreamInfo = class(unsupported('streamInfo():', { ${list(UNSUPPORTED_STREAM_INFO)} }, {}))
function StreamInfo:protocol() return H.si(1) end
function StreamInfo:downstreamLocalAddress() return H.si(2) end
function StreamInfo:downstreamDirectRemoteAddress() return H.si(3) end
function StreamInfo:downstreamRemoteAddress() return H.si(4) end
function StreamInfo:requestedServerName() return H.si(5) end
function StreamInfo:dynamicMetadata() return dynamicMetadata end
local streamInfo = setmetatable({}, StreamInfo)

local Ssl = class(unsupported('connection():ssl():', { ${list(UNSUPPORTED_SSL)} }, {}))
function Ssl:peerCertificatePresented() return H.ssl(2) end
function Ssl:uriSanPeerCertificate() return H.ssl(3) end
local ssl = setmetatable({}, Ssl)
local Connection = class({})
function Connection:ssl() if H.ssl(1) then return ssl end return nil end
local connection = setmetatable({}, Connection)

local Handle = class(unsupported('', { ${list(UNSUPPORTED)} }, {}))
function Handle:headers() return self.h end
function Handle:body(always_wrap)
  local st = H.body(self.dir)
  if st == 2 then yield(${YIELD_BODY}); st = H.body(self.dir) end
  if st == 0 and not always_wrap then return nil end
  return self.b
end
function Handle:bodyChunks()
  local st = H.body(self.dir)
  if st == 2 then yield(${YIELD_BODY}); st = H.body(self.dir) end
  local done = st == 0
  return function()
    if done then return nil end
    done = true
    return self.b
  end
end
function Handle:trailers()
  local st = H.trailers(self.dir)
  if st == 2 then yield(${YIELD_BODY}); st = H.trailers(self.dir) end
  if st == 1 then return self.t end
end
function Handle:metadata() return setmetatable({}, Metadata) end
function Handle:streamInfo() return streamInfo end
function Handle:connection() return connection end
function Handle:logTrace(m) H.log(0, m) end
function Handle:logDebug(m) H.log(1, m) end
function Handle:logInfo(m) H.log(2, m) end
function Handle:logWarn(m) H.log(3, m) end
function Handle:logErr(m) H.log(4, m) end
function Handle:logCritical(m) H.log(5, m) end
function Handle:respond(headers, body)
  H.respond(self.dir, headers, body)
  yield(${YIELD_RESPOND})
end
function Handle:httpCall(cluster, headers, body, timeout, asynchronous)
  if H.call(self.dir, cluster, headers, body, timeout, asynchronous) then return end
  yield(${YIELD_CALL})
  return H.callresult()
end
function Handle:clearRouteCache() H.clearroute() end
function Handle:base64Escape(s) return H.base64(s) end
function Handle:timestamp() return H.now(false) end
function Handle:timestampString() return H.now(true) end

local function handle(dir, hk, tk)
  return setmetatable({ dir = dir, h = headerMap(hk), t = headerMap(tk), b = setmetatable({ dir = dir }, Buffer) }, Handle)
end
__request_handle = handle(0, ${KIND_REQUEST_HEADERS}, ${KIND_REQUEST_TRAILERS})
__response_handle = handle(1, ${KIND_RESPONSE_HEADERS}, ${KIND_RESPONSE_TRAILERS})
`;
