# The demo experiment graph: tokenize, encode, train, generate, evaluate on examples/shapes
# (48 drawn images of coloured shapes, five captions each; see scripts/make-shapes.py).
# The encoder is a randomly initialised ResNet-152 (no pretrained weights are downloaded);
# its features still tell colours and shapes apart, so the decoder learns real captions.
#   make -f pipelines/shapes.mk [BIN=build/bin] [OUT=build/demo] [EPOCHS=150]
BIN    ?= build/bin
OUT    ?= build/demo
DATA   ?= examples/shapes
EPOCHS ?= 150
THREADS ?= 2

all: $(OUT)/scores.txt $(OUT)/test-captions.txt

$(OUT)/tokenizer.json: $(DATA)/captions.token.txt $(DATA)/train.txt
	@mkdir -p $(OUT)
	$(BIN)/cap-tokenize vocab --min-count 1 --split $(DATA)/train.txt -o $@ $<

$(OUT)/%.captions.mp: $(DATA)/captions.token.txt $(DATA)/%.txt $(OUT)/tokenizer.json
	$(BIN)/cap-tokenize encode --tokenizer $(OUT)/tokenizer.json --split $(DATA)/$*.txt -o $@ $<

# Features for every image; --basename so records name images as the caption file does.
$(OUT)/features.mp: $(wildcard $(DATA)/*.png)
	@mkdir -p $(OUT)
	ls $(DATA)/*.png | $(BIN)/cap-encode --weights random:1 --squash 224 --basename \
	    --threads $(THREADS) -o $@

$(OUT)/model.safetensors: $(OUT)/features.mp $(OUT)/train.captions.mp
	$(BIN)/cap-train --features $(OUT)/features.mp --captions $(OUT)/train.captions.mp \
	    --epochs $(EPOCHS) --batch 16 --embed 64 --hidden 128 --seed 1 --threads $(THREADS) -o $@

# Test features only: the images named in test.txt.
$(OUT)/test-features.mp: $(DATA)/test.txt
	@mkdir -p $(OUT)
	sed 's|^|$(DATA)/|' $< | $(BIN)/cap-encode --weights random:1 --squash 224 --basename \
	    --threads $(THREADS) -o $@

$(OUT)/generated.mp: $(OUT)/model.safetensors $(OUT)/test-features.mp
	$(BIN)/cap-generate --model $(OUT)/model.safetensors --beam 3 -o $@ $(OUT)/test-features.mp

$(OUT)/test-captions.txt: $(OUT)/model.safetensors $(OUT)/test-features.mp
	$(BIN)/cap-generate --model $(OUT)/model.safetensors --beam 3 --text $(OUT)/test-features.mp > $@
	cat $@

$(OUT)/scores.txt: $(OUT)/generated.mp $(OUT)/test.captions.mp
	$(BIN)/cap-eval --references $(OUT)/test.captions.mp $(OUT)/generated.mp > $@
	cat $@

clean:
	rm -rf $(OUT)

.PHONY: all clean
.DELETE_ON_ERROR:
