import assert from "node:assert/strict";
import { join } from "node:path";
import { preprocessMain } from "../../lib/data/preprocess_cli.ts";
import { loadFlowDataset } from "../../lib/data/cache.ts";
import { FIX } from "./datasets/_helpers.ts";

function capture() {
  const out: string[] = [];
  return {
    out,
    io: { stderr: { writeSync: (b: Uint8Array) => (out.push(new TextDecoder().decode(b)), b.length) } },
  };
}

Deno.test("preprocess CLI: casme2 fixture -> flow dataset file, progress on stderr, cache reused", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const out = join(tmp, "c2.mflow");
    const args = [
      "--dataset",
      "casme2",
      "--root",
      join(FIX, "casme2"),
      "--out",
      out,
      "--size",
      "4",
      "--cache",
      join(tmp, "cache"),
    ];
    const a = capture();
    assert.equal(await preprocessMain(args, a.io), 0);
    const text = a.out.join("");
    assert.match(text, /casme2: 6 samples from .*CASME2-coding-20190701\.xlsx \(1 warnings\)/);
    assert.match(text, /flow {2}\[#+\] {2}5\/5 {2}100\.0%/);
    assert.match(text, /wrote .*c2\.mflow: n=5, 4x4x3, protocol casme2-5class, 3 subjects, cache hits 0/);
    assert.match(text, /excluded: \{"fear":1\}/);
    const ds = await loadFlowDataset(out);
    assert.equal(ds.n, 5);
    assert.deepEqual(ds.classes.fine, ["disgust", "repression", "happiness", "surprise", "others"]);
    const b = capture();
    assert.equal(await preprocessMain([...args, "--quiet"], b.io), 0);
    assert.match(b.out.join(""), /cache hits 5/);
    assert.doesNotMatch(b.out.join(""), /flow {2}\[/);
    assert.deepEqual((await loadFlowDataset(out)).x, ds.x);

    // Shards fill the cache from separate runs; the final run reads everything from it.
    const sharded = ["--dataset", "casme2", "--root", join(FIX, "casme2"), "--size", "4", "--quiet"];
    const scache = ["--cache", join(tmp, "scache"), "--max-side", "6"];
    for (const sh of ["1/2", "2/2"]) {
      const o = capture();
      assert.equal(await preprocessMain([...sharded, ...scache, "--shard", sh], o.io), 0);
      assert.match(
        o.out.join(""),
        new RegExp(`shard ${sh}: ${sh === "1/2" ? 3 : 2} samples cached in .*scache`),
      );
    }
    const fin = capture();
    assert.equal(await preprocessMain([...sharded, ...scache, "--out", join(tmp, "s.mflow")], fin.io), 0);
    assert.match(fin.out.join(""), /n=5, 4x4x3, .* cache hits 5/);
    assert.equal((await loadFlowDataset(join(tmp, "s.mflow"))).preprocessing!.faceCrop, "maxSide6");
    await (async () => {
      const o = capture();
      assert.equal(await preprocessMain([...sharded, "--shard", "3/2"], o.io), 2);
      assert.match(o.out.join(""), /--shard: shard must be "i\/n"/);
    })();

    const c = capture();
    const comp = [
      "--dataset",
      "composite",
      "--list",
      join(FIX, "composite", "combined_3class_gt.csv"),
      "--casme2-root",
      join(FIX, "casme2"),
      "--samm-root",
      join(FIX, "samm"),
      "--smic-root",
      join(FIX, "smic"),
      "--out",
      join(tmp, "comp.mflow"),
      "--size",
      "2",
      "--no-cache",
      "--quiet",
    ];
    assert.equal(await preprocessMain(comp, c.io), 0);
    const cd = await loadFlowDataset(join(tmp, "comp.mflow"));
    assert.equal(cd.protocol, "megc2019-3class");
    assert.equal(new Set(cd.subjects).size, 7);
    assert.deepEqual([...new Set(cd.datasets)], ["casme2", "smic", "samm"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("preprocess CLI: argument errors exit 2, data errors exit 1 with the file and row", async () => {
  const bad = async (args: string[], code: number, re: RegExp) => {
    const c = capture();
    assert.equal(await preprocessMain(args, c.io), code);
    assert.match(c.out.join(""), re);
  };
  await bad(["--dataset", "mmew", "--out", "x"], 2, /--dataset must be one of casme2, samm/);
  await bad(["--dataset", "casme2", "--root", "x"], 2, /--out FILE is required/);
  await bad(
    ["--dataset", "casme2", "--root", "x", "--out", "y", "--size", "0"],
    2,
    /--size must be a positive integer/,
  );
  await bad(
    ["--dataset", "casme2", "--root", "x", "--out", "y", "--protocol", "nope"],
    2,
    /unknown protocol "nope"/,
  );
  await bad(["--bogus"], 2, /Unknown option '--bogus'/);
  await bad(["--dataset", "composite", "--out", "y"], 2, /--list FILE is required/);
  await bad(
    ["--dataset", "casme2", "--root", join(FIX, "casme2"), "--labels", join(FIX, "nope.xlsx"), "--out", "y"],
    1,
    /error: .*nope\.xlsx: label file not found/,
  );
  const h = capture();
  assert.equal(await preprocessMain(["--help"], h.io), 0);
  assert.match(h.out.join(""), /usage: deno task preprocess/);
});

Deno.test("preprocess CLI --face-crop: the face is found and cropped before the flow; a faceless clip is named", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    // a one-clip CASME II tree whose three frames are the astronaut photograph (a real face, 512 x 512)
    const clip = join(tmp, "CASME2_RAW_selected", "sub01", "EP01_01");
    await Deno.mkdir(clip, { recursive: true });
    const photo = new URL("../../data/astronaut.png", import.meta.url).pathname;
    for (const f of [1, 2, 3]) await Deno.copyFile(photo, join(clip, `img${f}.png`));
    await Deno.writeTextFile(
      join(tmp, "CASME2-coding-face.csv"),
      "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Estimated Emotion\n1,EP01_01,1,2,3,12,happiness\n",
    );
    const out = join(tmp, "face.mflow");
    const c = capture();
    const code = await preprocessMain(
      [
        "--dataset",
        "casme2",
        "--root",
        tmp,
        "--out",
        out,
        "--size",
        "8",
        "--no-cache",
        "--face-crop",
        "64",
        "--quiet",
      ],
      c.io,
    );
    assert.equal(code, 0, c.out.join(""));
    const ds = await loadFlowDataset(out);
    assert.equal(ds.n, 1);
    assert.equal(ds.preprocessing?.faceCrop, "eyeCrop64");
    // the fixture's frames are blank: no face, an error naming the label row (exit 1), or skipped
    const bad = capture();
    const args = ["--dataset", "casme2", "--root", join(FIX, "casme2"), "--out", join(tmp, "x.mflow")];
    assert.equal(await preprocessMain([...args, "--no-cache", "--face-crop", "16", "--quiet"], bad.io), 1);
    assert.match(
      bad.out.join(""),
      /row 2, field "onset frame": no face found in the onset frame .*img46\.jpg/,
    );
    const both = capture();
    assert.equal(await preprocessMain([...args, "--face-crop", "16", "--max-side", "8"], both.io), 2);
    assert.match(both.out.join(""), /--face-crop and --max-side exclude each other/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
