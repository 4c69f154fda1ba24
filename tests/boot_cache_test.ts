/**
 * The boot cache's on-disk format and its use, on regular files standing in
 * for block devices: slots against a model of torn and damaged writes,
 * placement against a brute-force first fit, and a device's life (blank,
 * filled, damaged, foreign, rolled back). The QEMU test boots with a real
 * virtio disk (tests/boot_test.ts).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ALIGN,
  BootCache,
  type CacheEntry,
  CacheError,
  type CacheHeader,
  currentSlot,
  DATA_START,
  decodeHeaderSlot,
  encodeHeaderSlot,
  entriesFit,
  placeEntries,
  SLOT_BYTES,
} from "../boot/cache.ts";
import { sha256Hex } from "../schemas/mod.ts";
import { tempDir } from "./helpers.ts";

const DEVICE_BYTES = 64 * 1024 * 1024;

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("")
);
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/);

/** Headers whose entries fit a device of DEVICE_BYTES. */
const header: fc.Arbitrary<CacheHeader> = fc.record({
  seq: fc.integer({ min: 1, max: 2 ** 40 }),
  floor: fc.integer({ min: 0, max: 2 ** 40 }),
  label: fc.stringMatching(/^[A-Za-z0-9._-]{1,32}$/),
  files: fc.uniqueArray(
    fc.record({ name, sha256: hex64, size: fc.integer({ min: 0, max: 1e6 }) }),
    { selector: (f) => f.name, maxLength: 8 },
  ),
}).map(({ files, ...rest }) => ({
  ...rest,
  entries: placeEntries([], files, DEVICE_BYTES),
}));

Deno.test("a header slot decodes to what was encoded", async () => {
  await fc.assert(
    fc.asyncProperty(header, async (h) => {
      const slot = await encodeHeaderSlot(h);
      assert.equal(slot.length, SLOT_BYTES);
      assert.deepEqual(await decodeHeaderSlot(slot, DEVICE_BYTES), h);
    }),
    { numRuns: 200 },
  );
});

Deno.test("a damaged slot is refused or still says exactly what was written", async () => {
  await fc.assert(
    fc.asyncProperty(
      header,
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      async (h, at, flip) => {
        const slot = await encodeHeaderSlot(h);
        // Damage lands in the part that holds the header, mostly.
        const used = 23 + 32 + new TextEncoder().encode(JSON.stringify(h))
          .length;
        const index = at % (used + 64);
        slot[index] ^= flip;
        const decoded = await decodeHeaderSlot(slot, DEVICE_BYTES);
        if (decoded !== null) assert.deepEqual(decoded, h);
        if (index < used) assert.equal(decoded, null);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("a header the schema refuses is never written", async () => {
  await assert.rejects(
    encodeHeaderSlot({
      seq: 1,
      floor: 0,
      label: "phase",
      entries: [{
        name: "kernel",
        sha256: `sha256:${"0".repeat(64)}`,
        size: 1,
        offset: DATA_START,
      }],
    }),
    (error: Error) =>
      error instanceof CacheError &&
      /invalid boot cache header/.test(error.message),
  );
});

Deno.test("a slot that does not fit the device, or is blank, is not a header", async () => {
  const big = {
    seq: 1,
    floor: 0,
    label: "phase",
    entries: [{
      name: "kernel",
      sha256: "0".repeat(64),
      size: DEVICE_BYTES,
      offset: DATA_START,
    }],
  };
  assert.equal(
    await decodeHeaderSlot(await encodeHeaderSlot(big), DEVICE_BYTES),
    null,
  );
  assert.equal(
    await decodeHeaderSlot(new Uint8Array(SLOT_BYTES), DEVICE_BYTES),
    null,
  );
  const overlapping = {
    ...big,
    entries: [
      { ...big.entries[0], size: 8192 },
      { ...big.entries[0], name: "initramfs", offset: DATA_START + 4096 },
    ],
  };
  assert.equal(
    await decodeHeaderSlot(await encodeHeaderSlot(overlapping), DEVICE_BYTES),
    null,
  );
});

Deno.test("the current slot is the valid one with the higher seq (model)", () => {
  const maybe = fc.option(fc.integer({ min: 1, max: 1000 }), { nil: null });
  fc.assert(
    fc.property(maybe, maybe, (a, b) => {
      const h = (seq: number | null) =>
        seq === null ? null : { seq, floor: 0, label: "x", entries: [] };
      const picked = currentSlot([h(a), h(b)]);
      const model = a === null && b === null
        ? null
        : b !== null && (a === null || b > a)
        ? 1
        : 0;
      assert.equal(picked, model);
    }),
  );
});

/** The lowest aligned offset where `size` fits among `taken`, by brute force. */
function firstFit(taken: CacheEntry[], size: number, device: number) {
  for (let offset = DATA_START; offset + size <= device; offset += ALIGN) {
    if (
      taken.every((e) =>
        offset + size <= e.offset || offset >= e.offset + e.size
      )
    ) return offset;
  }
  return null;
}

Deno.test("placement is first fit, aligned, inside the device, never overlapping (model)", () => {
  const device = DATA_START + 64 * ALIGN;
  const file = fc.record({
    name,
    sha256: hex64,
    size: fc.integer({ min: 0, max: 20 * ALIGN }),
  });
  fc.assert(
    fc.property(
      fc.uniqueArray(file, { selector: (f) => f.name, maxLength: 6 }),
      fc.uniqueArray(file, { selector: (f) => f.name, maxLength: 6 }),
      (keptFiles, wanted) => {
        const kept = placeEntries([], keptFiles, device);
        const names = new Set(kept.map((e) => e.name));
        const fresh = wanted.filter((f) => !names.has(f.name));
        const placed = placeEntries(kept, fresh, device);
        assert.ok(entriesFit([...kept, ...placed], device));
        // Each file is where a first fit puts it, or left out when none fits.
        const taken = [...kept];
        for (const f of fresh) {
          const expected = firstFit(taken, f.size, device);
          const got = placed.find((p) => p.name === f.name);
          assert.equal(got?.offset ?? null, expected);
          if (got) taken.push(got);
        }
      },
    ),
    { numRuns: 300 },
  );
});

async function blankDevice(path: string, bytes = DEVICE_BYTES) {
  using file = await Deno.open(path, { write: true, create: true });
  await file.truncate(bytes);
}

async function artifact(dir: string, fileName: string, size: number) {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  }
  const path = `${dir}/${fileName}`;
  await Deno.writeFile(path, bytes);
  return { name: fileName, path, size, sha256: await sha256Hex(bytes), bytes };
}

Deno.test("a device's life: taken when blank, filled, read back, damaged, rolled back, refused when foreign", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const device = `${dir}/disk.img`;
    await blankDevice(device);
    const kernel = await artifact(dir, "kernel", 3 * 1024 * 1024 + 17);
    const initramfs = await artifact(dir, "initramfs", 5 * 1024 * 1024);

    let cache = await BootCache.open(device);
    assert.equal(cache.floor, 0);
    assert.equal(cache.entries.length, 0);
    const current = {
      kernel: kernel.sha256,
      initramfs: initramfs.sha256,
    };
    await cache.record(1000, [kernel, initramfs], current);
    cache.close();

    cache = await BootCache.open(device);
    assert.equal(cache.floor, 1000);
    assert.equal(cache.label, "phase");
    const out = `${dir}/out`;
    assert.ok(
      await cache.copyOut("kernel", kernel.sha256, kernel.size, out),
    );
    assert.deepEqual(await Deno.readFile(out), kernel.bytes);
    // The cache never answers for other bytes than the manifest names.
    assert.equal(
      await cache.copyOut("kernel", initramfs.sha256, kernel.size, out),
      false,
    );
    // The floor only rises.
    await cache.record(900, [], current);
    assert.equal(cache.floor, 1000);

    // A new kernel: the initramfs stays where it is, the kernel is replaced.
    const newKernel = await artifact(dir, "kernel2", 2 * 1024 * 1024);
    const initramfsAt = cache.entries.find((e) => e.name === "initramfs")!
      .offset;
    await cache.record(
      1001,
      [{ ...newKernel, name: "kernel" }],
      { kernel: newKernel.sha256, initramfs: initramfs.sha256 },
    );
    assert.equal(
      cache.entries.find((e) => e.name === "initramfs")!.offset,
      initramfsAt,
    );
    const kernelEntry = cache.entries.find((e) => e.name === "kernel")!;
    assert.equal(kernelEntry.sha256, newKernel.sha256);
    cache.close();

    // Bytes changed on the disk behind the cache's back are caught.
    {
      using file = await Deno.open(device, { read: true, write: true });
      await file.seek(kernelEntry.offset + 1000, Deno.SeekMode.Start);
      await file.write(new Uint8Array([0x55]));
    }
    cache = await BootCache.open(device);
    assert.equal(
      await cache.copyOut("kernel", newKernel.sha256, newKernel.size, out),
      false,
    );
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
    assert.ok(
      await cache.copyOut("initramfs", initramfs.sha256, initramfs.size, out),
    );
    cache.close();

    // A write cut short: the newer slot torn, the older one is current.
    const before = await Deno.readFile(device);
    const floors = [];
    for (const slot of [0, 1]) {
      const h = await decodeHeaderSlot(
        before.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES),
        DEVICE_BYTES,
      );
      floors.push(h);
    }
    const newer = currentSlot([floors[0], floors[1]])!;
    {
      using file = await Deno.open(device, { read: true, write: true });
      await file.seek(newer * SLOT_BYTES + 40, Deno.SeekMode.Start);
      await file.write(new Uint8Array(100));
    }
    cache = await BootCache.open(device);
    assert.equal(cache.floor, floors[1 - newer]!.floor);
    cache.close();

    // Anything that is not blank and not a cache is left alone.
    const foreign = `${dir}/foreign.img`;
    await blankDevice(foreign);
    {
      using file = await Deno.open(foreign, { write: true });
      await file.seek(DATA_START - 1, Deno.SeekMode.Start);
      await file.write(new Uint8Array([1]));
    }
    const untouched = await Deno.readFile(foreign);
    await assert.rejects(
      BootCache.open(foreign),
      (error: Error) =>
        error instanceof CacheError &&
        /not a Phase boot cache/.test(error.message),
    );
    assert.deepEqual(await Deno.readFile(foreign), untouched);
    // Too small, relative paths and unknown labels: one-line refusals.
    const small = `${dir}/small.img`;
    await blankDevice(small, 4096);
    await assert.rejects(BootCache.open(small), /too small/);
    await assert.rejects(BootCache.open("disk.img"), /device path or LABEL/);
    await assert.rejects(
      BootCache.open("LABEL=nothing-has-this", { deviceDir: dir }),
      /no device holds a boot cache labelled nothing-has-this/,
    );
    // /dev/NAME means NAME in the device folder; LABEL= searches it.
    cache = await BootCache.open("/dev/disk.img", { deviceDir: dir });
    assert.equal(cache.device, "/dev/disk.img");
    assert.equal(cache.floor, floors[1 - newer]!.floor);
    cache.close();
    cache = await BootCache.open("LABEL=phase", { deviceDir: dir });
    assert.equal(cache.device, `${dir}/disk.img`);
    cache.close();
    // A character device is never opened for writing.
    await assert.rejects(
      BootCache.open("/dev/null"),
      /not a block device or a disk image/,
    );
  } finally {
    await cleanup();
  }
});

Deno.test("a file too big for the device is left out, the rest is kept", async () => {
  const [dir, cleanup] = await tempDir();
  try {
    const device = `${dir}/disk.img`;
    await blankDevice(device, DATA_START + 2 * 1024 * 1024);
    const small = await artifact(dir, "small", 1024 * 1024);
    const large = await artifact(dir, "large", 4 * 1024 * 1024);
    const cache = await BootCache.open(device);
    await cache.record(5, [large, small], {
      large: large.sha256,
      small: small.sha256,
    });
    assert.deepEqual(cache.entries.map((e) => e.name), ["small"]);
    assert.equal(cache.floor, 5);
    cache.close();
  } finally {
    await cleanup();
  }
});
