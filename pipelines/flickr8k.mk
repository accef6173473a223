# Flickr8k end to end as a make graph: vocabulary on the train split, captions per split,
# features in SHARDS shards (run them in parallel with make -j, or on several machines and
# join with cat), the decoder, captions for the test split, scores.
#   make -f pipelines/flickr8k.mk FLICKR=../shared/data/flickr8k IMAGES=/path/to/Flicker8k_Dataset \
#        WEIGHTS=resnet152.safetensors [SHARDS=4] [EPOCHS=30] [OUT=build/flickr8k] -j2
# WEIGHTS defaults to random:1 (a randomly initialised ResNet-152): a pipeline check only.
# TEST_IMAGES (default IMAGES) is where the test split's images are looked for; PREPROCESS
# passes e.g. "--squash 224" to every cap-encode.
BIN     ?= build/bin
FLICKR  ?= ../shared/data/flickr8k
IMAGES  ?= $(FLICKR)/images
TEST_IMAGES ?= $(IMAGES)
PREPROCESS ?=
WEIGHTS ?= random:1
OUT     ?= build/flickr8k
SHARDS  ?= 2
EPOCHS  ?= 30
THREADS ?= 1
TOKENS  = $(FLICKR)/Flickr8k.token.txt
SHARD_IDS := $(shell seq 1 $(SHARDS))

all: $(OUT)/scores.txt

$(OUT)/tokenizer.json: $(TOKENS)
	@mkdir -p $(OUT)
	$(BIN)/cap-tokenize vocab --min-count 5 --split $(FLICKR)/Flickr_8k.trainImages.txt -o $@ $<

$(OUT)/%.captions.mp: $(TOKENS) $(OUT)/tokenizer.json
	$(BIN)/cap-tokenize encode --tokenizer $(OUT)/tokenizer.json \
	    --split $(FLICKR)/Flickr_8k.$*Images.txt -o $@ $<

$(OUT)/images.txt:
	@mkdir -p $(OUT)
	find $(IMAGES) -name '*.jpg' | sort > $@

$(OUT)/features.%.mp: $(OUT)/images.txt
	$(BIN)/cap-encode --weights $(WEIGHTS) $(PREPROCESS) --basename --threads $(THREADS) \
	    --shard $*/$(SHARDS) -o $@ < $<

$(OUT)/features.mp: $(foreach k,$(SHARD_IDS),$(OUT)/features.$(k).mp)
	cat $^ > $@.tmp && mv $@.tmp $@

$(OUT)/model.safetensors: $(OUT)/features.mp $(OUT)/train.captions.mp $(OUT)/dev.captions.mp
	$(BIN)/cap-train --features $(OUT)/features.mp --captions $(OUT)/train.captions.mp \
	    --val-captions $(OUT)/dev.captions.mp --early-stop 3 --epochs $(EPOCHS) \
	    --threads $(THREADS) --log $(OUT)/train-log.mp -o $@

# The test images (those of TEST_IMAGES named in the test split), encoded on their own.
$(OUT)/test-features.mp:
	@mkdir -p $(OUT)
	find $(TEST_IMAGES) -name '*.jpg' | sort | grep -F -f $(FLICKR)/Flickr_8k.testImages.txt | \
	    $(BIN)/cap-encode --weights $(WEIGHTS) $(PREPROCESS) --basename --threads $(THREADS) -o $@

$(OUT)/generated.mp: $(OUT)/model.safetensors $(OUT)/test-features.mp
	$(BIN)/cap-generate --model $(OUT)/model.safetensors --beam 3 -o $@ $(OUT)/test-features.mp

$(OUT)/scores.txt: $(OUT)/generated.mp
	$(BIN)/cap-eval --references $(TOKENS) --split $(FLICKR)/Flickr_8k.testImages.txt $< > $@
	cat $@

clean:
	rm -rf $(OUT)

.PHONY: all clean
.DELETE_ON_ERROR:
.SECONDARY:
