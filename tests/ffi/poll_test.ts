/** PollSet and EventFd over real descriptors (no root needed). */
import assert from "node:assert/strict";
import { EventFd, POLLIN, POLLOUT, PollSet } from "../../ffi/poll.ts";

Deno.test("EventFd.signal() wakes PollSet.poll() and drain() returns the count", () => {
  const ev = EventFd.create();
  try {
    const set = new PollSet(2);
    const idx = set.add(ev.fd, POLLIN);
    assert.equal(set.poll(0), 0, "nothing signalled yet");
    assert.equal(ev.drain(), 0);
    assert.ok(ev.signal());
    assert.ok(ev.signal(2));
    assert.equal(set.poll(1000), 1);
    assert.equal(set.revents(idx) & POLLIN, POLLIN);
    assert.equal(ev.drain(), 3);
    assert.equal(set.poll(0), 0, "drained");
  } finally {
    ev.close();
  }
});

Deno.test("PollSet.poll() times out after roughly the requested time and reports POLLOUT", () => {
  const ev = EventFd.create();
  try {
    const set = new PollSet(1);
    set.add(ev.fd, POLLIN);
    const start = performance.now();
    assert.equal(set.poll(30.2), 0);
    const waited = performance.now() - start;
    assert.ok(waited >= 30, `waited ${waited} ms`);
    assert.ok(waited < 1000, `waited ${waited} ms`);
    set.setEvents(0, POLLIN | POLLOUT);
    assert.equal(set.poll(Infinity), 1, "an eventfd is always writable");
    assert.equal(set.revents(0), POLLOUT);
    set.setFd(0, -1);
    assert.equal(set.poll(0), 0, "negative fds are ignored");
  } finally {
    ev.close();
  }
});

Deno.test("EventFd.fromFd() shares the counter without owning the fd", () => {
  const ev = EventFd.create();
  const view = EventFd.fromFd(ev.fd);
  view.signal(5);
  view.close(); // must not close the fd
  assert.equal(ev.drain(), 5);
  ev.close();
});

Deno.test("PollSet refuses bad capacities and overflow", () => {
  assert.throws(() => new PollSet(0), RangeError);
  const set = new PollSet(1);
  set.add(0, POLLIN);
  assert.throws(() => set.add(1, POLLIN), RangeError);
});
