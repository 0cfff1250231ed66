"""Sign-in throttling: the rule, counted in the store so every web process counts the same
attempts (`inbox.store.signins` applies it there).

The rule (OWASP's authentication guidance: growing delays, no hard account lock):

* Two keys count each attempt: the pair (account, client address) and the address
  alone (one address trying many accounts). The owner signing in from another address
  has a pair of its own, so an attacker cannot lock them out.
* The pair lets `free_attempts` attempts through at once, the address
  `address_free_attempts` (many agents share an office's address: a few typos there
  must not hold everyone back). After that each further attempt
  waits `delay * 2**(n - free_attempts)` seconds after the key's last one (n: attempts
  counted), at most `max_delay`. A key without attempts for `forget` seconds starts anew.
* An attempt is counted BEFORE the password is checked (`reserve`), atomically, so
  parallel requests cannot all pass a check before any of them is counted. A success
  clears the pair and gives the address its attempt back and forgives it one earlier
  failure (`succeeded`: an office where people sign in drifts back to zero; an address
  that only guesses does not); an attempt that was never checked is given back to both
  keys (`release`). `waiting` reads the same rule without writing.

The counting itself (`reserve`, `waiting`, `release`, `failed`, `succeeded`, `counted`) is
`inbox.store.signins`'s; this module is the rule and the keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["ADDRESS_PREFIX", "ThrottlePolicy", "keys_for"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    free_attempts: int = 5
    delay: float = 5.0  # seconds before the first attempt past the free ones
    max_delay: float = 900.0
    forget: float = 3600.0  # seconds without attempts after which a key starts anew
    address_free_attempts: int = 20  # the same for the address alone, any account

    def for_key(self, key: str) -> ThrottlePolicy:
        """The rule a key counts by: an address key has its own number of free attempts."""
        if key.startswith(ADDRESS_PREFIX) and self.address_free_attempts != self.free_attempts:
            return replace(self, free_attempts=self.address_free_attempts)
        return self

    def by_rule(self, keys: Sequence[str]) -> list[tuple[ThrottlePolicy, list[str]]]:
        """`keys` grouped by the rule each counts by (`for_key`), in their order."""
        groups: dict[ThrottlePolicy, list[str]] = {}
        for key in keys:
            groups.setdefault(self.for_key(key), []).append(key)
        return list(groups.items())

    def wait_after(self, failures: int) -> float:
        """Seconds a key with this many counted attempts waits after its last one."""
        if failures < self.free_attempts:
            return 0.0
        return float(min(self.delay * 2 ** min(failures - self.free_attempts, 60), self.max_delay))


ADDRESS_PREFIX = "addr:"


def keys_for(account: str, address: str) -> tuple[str, str]:
    """(pair key, address key) of a sign-in attempt."""
    return f"pair:{address[:64]}|{account[:320]}", f"{ADDRESS_PREFIX}{address[:64]}"
