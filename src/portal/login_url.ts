/**
 * The portal WebSocket URL (spec §2.1):
 * `<ws|wss>://<host>[:port]<base-path>/gateway/websocket?token=..&external_id=..&name=..&public_key=..`.
 *
 * - scheme `http`/`ws` → `ws`, `https`/`wss` → `wss`, anything else is an error;
 * - path: the API URL's path minus one trailing empty segment, then `gateway/websocket`; the API URL's
 *   own query is dropped;
 * - query in this order, `application/x-www-form-urlencoded` (space → `+`);
 * - port quirk: an API URL without a port, or with its scheme's default port, connects to **443**
 *   (so `ws://host` and `ws://host:80` use port 443).
 *
 * The token is part of the URL, so the full URL is only handed out inside a {@link Secret}. Pure.
 *
 * @module
 */

import { Secret } from "../log.ts";

/** The port used when the API URL has none (or its scheme's default). */
export const DEFAULT_PORTAL_PORT = 443;

/** The WebSocket path suffix appended to the API URL's path. */
const GATEWAY_PATH_SEGMENTS = ["gateway", "websocket"] as const;

/** A validated portal API URL. */
export interface ApiUrl {
  readonly scheme: "ws" | "wss";
  /** Host to connect to (IPv6 without brackets). */
  readonly hostname: string;
  /** Host as written in the URL and sent in the `Host` header (IPv6 in brackets, no port). */
  readonly hostHeader: string;
  /** Port to connect to (see the port quirk). */
  readonly port: number;
  /** Request path, ending in `/gateway/websocket`. */
  readonly path: string;
  /** The API URL as given, for messages. */
  readonly original: string;
}

/**
 * Validates and normalises `--api-url`.
 * @throws TypeError naming the problem when the URL does not parse, has another scheme or no host
 */
export function parseApiUrl(text: string): ApiUrl {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Invalid API URL "${text}": expected an absolute URL such as wss://api.firezone.dev`);
  }
  let scheme: "ws" | "wss";
  switch (url.protocol) {
    case "ws:":
    case "http:":
      scheme = "ws";
      break;
    case "wss:":
    case "https:":
      scheme = "wss";
      break;
    default:
      throw new TypeError(
        `Invalid API URL "${text}": scheme "${
          url.protocol.slice(0, -1)
        }" is not supported, expected wss, ws, https or http`,
      );
  }
  if (url.hostname === "") {
    throw new TypeError(
      `Invalid API URL "${text}": it has no host, expected a URL such as wss://api.firezone.dev`,
    );
  }
  const segments = url.pathname.split("/").slice(1);
  if (segments.length > 0 && segments[segments.length - 1] === "") segments.pop();
  segments.push(...GATEWAY_PATH_SEGMENTS);
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return {
    scheme,
    hostname,
    hostHeader: url.hostname,
    port: url.port === "" ? DEFAULT_PORTAL_PORT : Number(url.port),
    path: `/${segments.join("/")}`,
    original: text,
  };
}

/** The query parameters known before connecting (the public key is added per connection). */
export interface LoginParams {
  readonly token: Secret<string>;
  readonly externalId: string;
  readonly name: string;
}

/** Builds the login URL for each connection attempt. */
export class LoginUrl {
  readonly api: ApiUrl;
  readonly #params: LoginParams;

  constructor(api: ApiUrl, params: LoginParams) {
    this.api = api;
    this.#params = params;
  }

  /** The HTTP request target (`/path?query`) including the token and the given public key. */
  requestTarget(publicKeyBase64: string): Secret<string> {
    return new Secret(`${this.api.path}?${this.#query(this.#params.token.expose(), publicKeyBase64)}`);
  }

  /** The full URL including the token. */
  url(publicKeyBase64: string): Secret<string> {
    return new Secret(`${this.#origin()}${this.requestTarget(publicKeyBase64).expose()}`);
  }

  /** The full URL with the token replaced by `[redacted]`: safe to log. */
  redacted(publicKeyBase64: string): string {
    return `${this.#origin()}${this.api.path}?${this.#query("[redacted]", publicKeyBase64, false)}`;
  }

  #origin(): string {
    const defaultPort = this.api.scheme === "wss" ? 443 : 80;
    const port = this.api.port === defaultPort ? "" : `:${this.api.port}`;
    return `${this.api.scheme}://${this.api.hostHeader}${port}`;
  }

  #query(token: string, publicKey: string, encodeToken = true): string {
    return [
      `token=${encodeToken ? formEncode(token) : token}`,
      `external_id=${formEncode(this.#params.externalId)}`,
      `name=${formEncode(this.#params.name)}`,
      `public_key=${formEncode(publicKey)}`,
    ].join("&");
  }
}

/**
 * `application/x-www-form-urlencoded` byte serializer (WHATWG URL §5.2, Rust `form_urlencoded`):
 * ASCII alphanumerics and `*-._` stay, space becomes `+`, every other UTF-8 byte becomes `%XX`.
 */
export function formEncode(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = "";
  for (const b of bytes) {
    if (
      (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
      b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f
    ) {
      out += String.fromCharCode(b);
    } else if (b === 0x20) {
      out += "+";
    } else {
      out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}
