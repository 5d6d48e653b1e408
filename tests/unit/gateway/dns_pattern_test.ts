import assert from "node:assert/strict";
import {
  comparePatterns,
  DomainPattern,
  isSubdomain,
  PatternError,
} from "../../../src/gateway/dns_pattern.ts";

// Upstream dns.rs `domain_pattern_matches` test_case table.
const MATCHES: [string, string, string][] = [
  ["**.example.com", "example.com", "double star matches root domain"],
  ["app.**.example.com", "app.bar.foo.example.com", "double star matches multiple levels within domain"],
  ["**.example.com", "foo.example.com", "double star matches one level"],
  ["**.example.com", "foo.bar.example.com", "double star matches two levels"],
  ["*.example.com", "foo.example.com", "single star matches one level"],
  ["*.example.com", "example.com", "single star matches root domain"],
  ["foo.*.example.com", "foo.bar.example.com", "single star matches one domain within domain"],
  ["app.*.*.example.com", "app.foo.bar.example.com", "single star can appear on multiple levels"],
  ["app.f??.example.com", "app.foo.example.com", "question mark matches one letter"],
  ["app.example.com", "app.example.com", "matches literal domain"],
  ["*?*.example.com", "app.example.com", "mix of * and ?"],
  ["app.**.web.**.example.com", "app.web.example.com", "multiple double star within domain"],
];

// Upstream dns.rs `domain_pattern_does_not_match` test_case table.
const DOES_NOT_MATCH: [string, string, string][] = [
  ["app.*.example.com", "app.foo.bar.example.com", "single star does not match two level"],
  ["app.*com", "app.foo.com", "single star does not match dot"],
  ["app?com", "app.com", "question mark does not match dot"],
];

for (const [pattern, domain, name] of MATCHES) {
  Deno.test(`DomainPattern.matches(): ${name} (${pattern} ~ ${domain})`, () => {
    assert.equal(DomainPattern.parse(pattern).matches(domain), true);
  });
}

for (const [pattern, domain, name] of DOES_NOT_MATCH) {
  Deno.test(`DomainPattern.matches(): ${name} (${pattern} !~ ${domain})`, () => {
    assert.equal(DomainPattern.parse(pattern).matches(domain), false);
  });
}

Deno.test("DomainPattern.matches() is case-insensitive and ignores a trailing dot", () => {
  assert.equal(DomainPattern.parse("*.Corp.Example").matches("APP.corp.example."), true);
  assert.equal(DomainPattern.parse("app.corp.example").matches("App.Corp.Example"), true);
  assert.equal(DomainPattern.parse("*.corp.example").matches("CORP.example"), true);
});

Deno.test("DomainPattern.matches() does not match longer or shorter names for literal patterns", () => {
  const p = DomainPattern.parse("app.example.com");

  assert.equal(p.matches("example.com"), false);
  assert.equal(p.matches("x.app.example.com"), false);
  assert.equal(p.matches("app.example.com.au"), false);
});

Deno.test("DomainPattern.matches(): ? matches exactly one character, ** requires the suffix", () => {
  assert.equal(DomainPattern.parse("?.httpbin").matches("a.httpbin"), true);
  assert.equal(DomainPattern.parse("?.httpbin").matches("ab.httpbin"), false);
  assert.equal(DomainPattern.parse("?.httpbin").matches("httpbin"), false);
  assert.equal(DomainPattern.parse("**.corp.example").matches("a.b.c.corp.example"), true);
  assert.equal(DomainPattern.parse("**.corp.example").matches("corp.example.org"), false);
  assert.equal(DomainPattern.parse("**.corp.example").matches("xcorp.example"), false);
});

Deno.test("DomainPattern supports glob character classes", () => {
  assert.equal(DomainPattern.parse("app[0-9].example.com").matches("app7.example.com"), true);
  assert.equal(DomainPattern.parse("app[0-9].example.com").matches("appx.example.com"), false);
  assert.equal(DomainPattern.parse("app[!0-9].example.com").matches("appx.example.com"), true);
  assert.equal(DomainPattern.parse("[a-c]pp.example.com").matches("Bpp.example.com"), true);
});

Deno.test("DomainPattern.parse() refuses invalid globs; isSubdomain() then matches nothing", () => {
  for (const bad of ["***.example.com", "a**.example.com", "**b.example.com", "app.[abc"]) {
    assert.throws(() => DomainPattern.parse(bad), PatternError, bad);
    assert.equal(isSubdomain("app.example.com", bad), false);
  }
  assert.equal(DomainPattern.tryParse("***.example.com"), null);
  assert.equal(DomainPattern.tryParse("**.ok.example")?.original, "**.ok.example");
});

Deno.test("isSubdomain() matches domains against resource patterns", () => {
  assert.equal(isSubdomain("foo.com", "foo.com"), true);
  assert.equal(isSubdomain("bar.foo.com", "*.foo.com"), true);
  assert.equal(isSubdomain("bar.com", "*.foo.com"), false);
});

// Upstream dns.rs `pattern_ordering`.
Deno.test("comparePatterns() orders patterns from most to least specific", () => {
  const patterns = [
    "**.example.com",
    "bar.example.com",
    "foo.example.com",
    "example.com",
    "*ample.com",
    "*.bar.example.com",
    "?.example.com",
    "*.com",
    "*.example.com",
  ];

  const sorted = patterns.slice().sort(comparePatterns);

  assert.deepEqual(sorted, [
    "example.com",
    "bar.example.com",
    "*.bar.example.com",
    "foo.example.com",
    "?.example.com",
    "*.example.com",
    "**.example.com",
    "*ample.com",
    "*.com",
  ]);
  assert.equal(comparePatterns("a.com", "a.com"), 0);
});
