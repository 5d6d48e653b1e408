/**
 * The portal control plane, sans-IO: the Phoenix channel state machine (`PhoenixChannel`), the
 * typed `gateway` topic messages (parsers and egress builders), the login URL and User-Agent rules,
 * the WebSocket handshake/frame codec, the reconnect backoff, and the narrow interface to the data
 * plane (`TunnelControl`). The I/O drivers live in `src/io/` (`portal_socket.ts`,
 * `websocket_client.ts`, `gateway_app.ts`).
 *
 * @module
 */

export * from "./backoff.ts";
export * from "./login_url.ts";
export * from "./messages.ts";
export * from "./phoenix_channel.ts";
export * from "./tunnel_control.ts";
export * from "./user_agent.ts";
export * from "./uuid.ts";
export * from "./websocket_codec.ts";
