// Hugging Face tokenizers (the npm Node binding of the Rust library) as an oracle for
// test_tokenize_hf.py. Commands:
//   encode TOKENIZER.json        stdin: JSON array of texts; stdout: JSON array of id arrays
//   decode TOKENIZER.json        stdin: JSON array of id arrays; stdout: JSON array of texts
//                                (special tokens skipped)
//   resave IN.json OUT.json      loads a tokenizer.json and saves it with the library's writer
//   load TEXTS.json|- FILE...    loads each tokenizer.json; stdout: JSON object FILE -> {"error":
//                                message} or {"ids": the ids of each text of TEXTS.json} (with -,
//                                {} and no encoding: the library panics encoding some files)
//   build VOCAB.json OUT.json    builds a WordLevel tokenizer through the library's API (vocab
//                                from VOCAB.json's model.vocab; Lowercase, Whitespace, the four
//                                special tokens, "<start> $A <end>") and saves it
const path = require("path");
const fs = require("fs");
const hf = require(path.join(__dirname, "..", "node_modules", "tokenizers"));

async function main() {
	const [cmd, a, b] = process.argv.slice(2);
	if (cmd === "encode") {
		const tok = hf.Tokenizer.fromFile(a);
		const texts = JSON.parse(fs.readFileSync(0, "utf8"));
		const out = [];
		for (let i = 0; i < texts.length; i += 2000) {
			const encs = await tok.encodeBatch(texts.slice(i, i + 2000));
			for (const e of encs) out.push(e.getIds());
		}
		process.stdout.write(JSON.stringify(out));
	} else if (cmd === "decode") {
		const tok = hf.Tokenizer.fromFile(a);
		const ids = JSON.parse(fs.readFileSync(0, "utf8"));
		const out = [];
		for (let i = 0; i < ids.length; i += 2000) out.push(...(await tok.decodeBatch(ids.slice(i, i + 2000), true)));
		process.stdout.write(JSON.stringify(out));
	} else if (cmd === "resave") {
		hf.Tokenizer.fromFile(a).save(b, true);
	} else if (cmd === "load") {
		const texts = a === "-" ? [] : JSON.parse(fs.readFileSync(a, "utf8"));
		const out = {};
		for (const f of process.argv.slice(4)) {
			try {
				const tok = hf.Tokenizer.fromFile(f);
				const ids = [];
				for (const t of texts) ids.push((await tok.encode(t)).getIds());
				out[f] = a === "-" ? {} : { ids };
			} catch (e) {
				out[f] = { error: String(e) };
			}
		}
		process.stdout.write(JSON.stringify(out));
	} else if (cmd === "build") {
		const vocab = JSON.parse(fs.readFileSync(a, "utf8")).model.vocab;
		const tok = new hf.Tokenizer(hf.WordLevel.init(vocab, { unkToken: "<unk>" }));
		tok.setNormalizer(hf.lowercase());
		tok.setPreTokenizer(hf.whitespacePreTokenizer());
		tok.addSpecialTokens(["<pad>", "<start>", "<end>", "<unk>"]);
		tok.setPostProcessor(hf.templateProcessing("<start> $A <end>", null, [["<start>", 1], ["<end>", 2]]));
		tok.save(b, false);
	} else {
		throw new Error("unknown command " + cmd);
	}
}
main().catch((e) => { console.error(String(e)); process.exit(1); });
