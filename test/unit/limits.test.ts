// The connection limiter's key: one per IPv4 address, one per IPv6 /64.

import { describe, expect, test } from "vitest";
import { clientKey } from "../../server/http/limits.js";

describe("clientKey", () => {
  test.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:192.0.2.7", "192.0.2.7"],
    ["::FFFF:192.0.2.7", "192.0.2.7"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["2001:DB8::", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
  ])("%s → %s", (address, key) => {
    expect(clientKey(address)).toBe(key);
  });

  test("two hosts of one /64 share a key; neighbouring networks do not", () => {
    expect(clientKey("2001:db8:1:2::a")).toBe(clientKey("2001:db8:1:2:ffff::b"));
    expect(clientKey("2001:db8:1:2::a")).not.toBe(clientKey("2001:db8:1:3::a"));
  });
});
