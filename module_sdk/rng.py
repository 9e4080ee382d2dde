"""A small deterministic random generator for reducers (`ctx.rng`).

Reducers must be deterministic, so the generator is seeded from the call's timestamp (like the Rust SDK's
`ctx.rng()` and the TypeScript `ctx.random`).  The algorithm is PCG32 (XSH-RR, O'Neill 2014); the API is
the commonly used part of `random.Random` (which itself costs ~1 MB of imports per module).
"""

_M64 = 0xFFFFFFFFFFFFFFFF
_MULT = 6364136223846793005
_INC = 1442695040888963407
_TWO53 = 9007199254740992.0


class Rng:
    """PCG32 seeded with an integer.  `random()`, `randint(a, b)`, `randrange(...)`, `choice`, `shuffle`,
    `sample`, `uniform`, `getrandbits(k)`, `randbytes(n)`, `next_u32()`, `next_u64()`."""

    __slots__ = ('_state',)

    def __init__(self, seed=0):
        self.seed(seed)

    def seed(self, seed):
        self._state = 0
        self.next_u32()
        self._state = (self._state + (int(seed) & _M64)) & _M64
        self.next_u32()

    def next_u32(self):
        old = self._state
        self._state = (old * _MULT + _INC) & _M64
        x = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((x >> rot) | (x << ((32 - rot) & 31))) & 0xFFFFFFFF

    def next_u64(self):
        return (self.next_u32() << 32) | self.next_u32()

    def getrandbits(self, k):
        if k < 0:
            raise ValueError('number of bits must be non-negative')
        v = 0
        bits = 0
        while bits < k:
            v = (v << 32) | self.next_u32()
            bits += 32
        return v >> (bits - k)

    def random(self):
        """A float in [0.0, 1.0) with 53 random bits."""
        return ((self.next_u32() >> 5) * 67108864.0 + (self.next_u32() >> 6)) / _TWO53

    def _below(self, n):
        if n <= 0:
            raise ValueError('empty range')
        k = n.bit_length()
        r = self.getrandbits(k)
        while r >= n:
            r = self.getrandbits(k)
        return r

    def randrange(self, start, stop=None, step=1):
        if stop is None:
            start, stop = 0, start
        if step == 1:
            return start + self._below(stop - start)
        if step == 0:
            raise ValueError('zero step for randrange()')
        n = (stop - start + step - (1 if step > 0 else -1)) // step
        return start + step * self._below(n)

    def randint(self, a, b):
        """An int in [a, b], both ends included."""
        return a + self._below(b - a + 1)

    def uniform(self, a, b):
        return a + (b - a) * self.random()

    def choice(self, seq):
        if not seq:
            raise IndexError('cannot choose from an empty sequence')
        return seq[self._below(len(seq))]

    def shuffle(self, x):
        for i in range(len(x) - 1, 0, -1):
            j = self._below(i + 1)
            x[i], x[j] = x[j], x[i]

    def sample(self, population, k):
        pool = list(population)
        if not 0 <= k <= len(pool):
            raise ValueError('sample larger than population or is negative')
        out = []
        for i in range(k):
            j = i + self._below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
            out.append(pool[i])
        return out

    def randbytes(self, n):
        out = bytearray()
        while len(out) < n:
            out += self.next_u32().to_bytes(4, 'little')
        return bytes(out[:n])

    def fill(self, buf):
        """Fill a bytearray / writable buffer with random bytes."""
        buf[:] = self.randbytes(len(buf))
        return buf

    def __repr__(self):
        return '<Rng pcg32>'
