// A Proxy-Wasm plugin written with a real SDK (AssemblyScript's @solo-io/proxy-runtime, ABI 0.2.0),
// compiled at test time (test/helpers/assemblyscript.ts). It is AssemblyScript, not TypeScript:
// tsconfig and eslint leave this directory out. What it does is asserted by
// test/proxy/wasm-sdk-plugin.test.ts.
export * from "@solo-io/proxy-runtime/proxy";
import { RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, send_local_response, continue_request, Counter, HeaderPair, GrpcStatusValues, LogLevelValues, log } from "@solo-io/proxy-runtime";
import { get_property, set_property } from "@solo-io/proxy-runtime/runtime";

function pair(k: string, v: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(k), String.UTF8.encode(v));
}

class SdkRoot extends RootContext {
  requests: Counter | null = null;

  onConfigure(configuration_size: u32): bool {
    super.onConfigure(configuration_size);
    this.requests = new Counter("sdk_requests");
    log(LogLevelValues.info, "sdk plugin configured: " + this.getConfiguration());
    return true;
  }

  createContext(context_id: u32): Context {
    return new SdkStream(context_id, this);
  }
}

// The auth service's answer: its status goes to the upstream as x-auth-status; not 200 → 403.
function onAuthResponse(origin: Context, headers: u32, body_size: usize, trailers: u32): void {
  const status = stream_context.headers.http_callback.get(":status");
  if (status != "200") {
    send_local_response(403, "sdk_auth_denied", String.UTF8.encode("denied by the auth service (" + status + ")"), [pair("x-sdk", "auth")], GrpcStatusValues.Unauthenticated);
    return;
  }
  stream_context.headers.request.add("x-auth-status", status);
  continue_request();
}

class SdkStream extends Context {
  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as SdkRoot;
    (root.requests as Counter).increment(1);
    const h = stream_context.headers.request;
    if (h.get("x-deny") != "") {
      send_local_response(403, "sdk_denied", String.UTF8.encode("denied by the sdk plugin"), [pair("x-sdk", "deny")], GrpcStatusValues.PermissionDenied);
      return FilterHeadersStatusValues.StopIteration;
    }
    h.add("x-as-path", h.get(":path"));
    h.add("x-as-method", String.UTF8.decode(get_property("request\0method")));
    h.replace("user-agent", "sdk-plugin");
    h.remove("x-secret");
    set_property("sdk_marker", String.UTF8.encode("seen"));
    h.add("x-as-marker", String.UTF8.decode(get_property("sdk_marker")));
    if (h.get("x-call") != "") {
      root.httpCall("auth", [pair(":method", "GET"), pair(":path", "/check"), pair(":authority", "auth"), pair("x-ask", h.get("x-call"))], new ArrayBuffer(0), [], 2000, this, onAuthResponse);
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-sdk-config", this.root_context.getConfiguration());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new SdkRoot(context_id) as RootContext; }, "sdk");
