import assert from "node:assert/strict";
import { configureLogging, Level, type LogRecord } from "../../../src/log.ts";
import { selectCryptoBackend } from "../../../src/io/crypto_select.ts";
import { OPENSSL } from "./_support.ts";

const MISSING_LIB = "/nonexistent/fz-test/libcrypto.so.3";

function captureWarnings(): { records: LogRecord[]; restore: () => void } {
  const records: LogRecord[] = [];
  configureLogging({ sink: (r) => records.push(r), filter: () => Level.Trace });
  return {
    records,
    restore: () => configureLogging({ sink: () => {}, filter: () => Level.Info }),
  };
}

Deno.test("selectCryptoBackend('noble') picks noble even when libcrypto is present", () => {
  assert.equal(selectCryptoBackend("noble").name, "noble");
});

Deno.test({
  name: "selectCryptoBackend('openssl') and unset pick OpenSSL when libcrypto loads",
  ignore: OPENSSL === null,
  fn() {
    const cap = captureWarnings();
    try {
      assert.equal(selectCryptoBackend("openssl").name, "openssl");
      assert.equal(selectCryptoBackend("", "libcrypto.so.3").name, "openssl");
      assert.equal(cap.records.filter((r) => r.level === Level.Warn).length, 0);
    } finally {
      cap.restore();
    }
  },
});

Deno.test("selectCryptoBackend() unset with libcrypto absent falls back to noble with exactly one warning", () => {
  const cap = captureWarnings();
  try {
    const backend = selectCryptoBackend("", MISSING_LIB);
    assert.equal(backend.name, "noble");
    const warnings = cap.records.filter((r) => r.level === Level.Warn);
    assert.equal(warnings.length, 1);
    const w = warnings[0]!;
    assert.equal(w.target, "fz_gateway::crypto");
    assert.match(w.message, /noble/);
    assert.match(w.message, /performance is reduced/);
    assert.match(String(w.fields?.reason), /nonexistent/);
  } finally {
    cap.restore();
  }
});

Deno.test("selectCryptoBackend('openssl') with libcrypto absent throws an Error naming FZ_CRYPTO", () => {
  assert.throws(
    () => selectCryptoBackend("openssl", MISSING_LIB),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.ok(!(err instanceof RangeError));
      assert.match(err.message, /FZ_CRYPTO=openssl/);
      assert.match(err.message, /nonexistent/);
      return true;
    },
  );
});

Deno.test("selectCryptoBackend() rejects an unknown FZ_CRYPTO value with a RangeError", () => {
  assert.throws(
    () => selectCryptoBackend("boringssl", MISSING_LIB),
    (err: unknown) => {
      assert.ok(err instanceof RangeError);
      assert.match(err.message, /FZ_CRYPTO/);
      assert.match(err.message, /"boringssl"/);
      assert.match(err.message, /openssl, noble/);
      return true;
    },
  );
  assert.throws(() => selectCryptoBackend("OpenSSL"), RangeError, "values are case-sensitive");
});
