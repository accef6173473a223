# Flickr8k end to end as a make graph: vocabulary on the train split, captions per split,
# features of the train and dev images in SHARDS shards (run them in parallel with make -j, on
# several hosts with HOSTS=, or as a Slurm job array: pipelines/slurm/), features of the test
# images, the decoder, captions for the test split, scores and the report.
#   make -f pipelines/flickr8k.mk FLICKR=../shared/data/flickr8k IMAGES=/path/to/Flicker8k_Dataset \
#        WEIGHTS=resnet152-f82ba261.pth PREPROCESS="--resize 232" [SHARDS=4] [EPOCHS=30] \
#        [OUT=build/flickr8k] -j2
#   make -f pipelines/flickr8k.mk summary [RUNS=build]   a table of the runs under RUNS
# WEIGHTS defaults to random:1 (a randomly initialised ResNet-152): a pipeline check only;
# scripts/get-weights.sh fetches torchvision's. TEST_IMAGES (default IMAGES) is where the test
# split's images are looked for; PREPROCESS holds cap-encode options for every encoding
# (e.g. "--squash 224", "--resize 232", "--bf16"). TRAIN_PRECISION=bf16 trains in bfloat16
# (cap-train --precision; on a CPU it needs AVX512-BF16).
#
# Every step depends on the settings it uses (pipelines/settings.mk): changing BEAM reruns only
# generation, evaluation and the report; EPOCHS the training and what follows; WEIGHTS or
# PREPROCESS the features too. A run folder (OUT) holds settings.txt, scores.txt and report.html;
# runs with other settings go side by side in other folders (OUT=build/runs/beam5 ...).
BIN     ?= build/bin
FLICKR  ?= ../shared/data/flickr8k
IMAGES  ?= $(FLICKR)/images
TEST_IMAGES ?= $(IMAGES)
TOKENS  ?= $(FLICKR)/Flickr8k.token.txt
PREPROCESS ?=
WEIGHTS ?= random:1
OUT     ?= build/flickr8k
SHARDS  ?= 2
MIN_COUNT ?= 5
EPOCHS  ?= 30
BATCH   ?= 64
LR      ?= 1e-3
EMBED   ?= 256
HIDDEN  ?= 512
LAYERS  ?= 1
DROPOUT ?= 0
SEED    ?= 1
EARLY_STOP ?= 3
TRAIN_PRECISION ?= fp32
BEAM    ?= 3
MAX_LEN ?= 20
# Threads of each tool (not a setting of the results). With make -jN, SHARDS encoders share
# the cores: THREADS=$$(( $$(nproc) / N )) is then the better value.
THREADS ?= $(shell nproc 2>/dev/null || echo 1)
# HOSTS=h1,h2 (GNU parallel's --sshlogin list; ':' is this machine) encodes the shards there.
HOSTS   ?=
PARALLEL ?= parallel
RUNS    ?= $(patsubst %/,%,$(dir $(OUT)))
HERE    := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

SPLIT    = $(FLICKR)/Flickr_8k.$(1)Images.txt
SHARD_IDS := $(shell seq 1 $(SHARDS))
ENCODE   = $(BIN)/cap-encode --weights $(WEIGHTS) $(PREPROCESS) --basename --threads $(THREADS)
# A weights file is a dependency of the features; random:SEED is not a file.
WEIGHTS_FILE = $(filter-out random random:%,$(WEIGHTS))

define STAMP_vocab
TOKENS=$(abspath $(TOKENS))
MIN_COUNT=$(MIN_COUNT)
endef
define STAMP_images
IMAGES=$(abspath $(IMAGES))
TEST_IMAGES=$(abspath $(TEST_IMAGES))
endef
define STAMP_encoder
WEIGHTS=$(WEIGHTS)
PREPROCESS=$(PREPROCESS)
endef
define STAMP_shards
SHARDS=$(SHARDS)
endef
define STAMP_train
EPOCHS=$(EPOCHS)
BATCH=$(BATCH)
LR=$(LR)
EMBED=$(EMBED)
HIDDEN=$(HIDDEN)
LAYERS=$(LAYERS)
DROPOUT=$(DROPOUT)
SEED=$(SEED)
EARLY_STOP=$(EARLY_STOP)
TRAIN_PRECISION=$(TRAIN_PRECISION)
endef
define STAMP_generate
BEAM=$(BEAM)
MAX_LEN=$(MAX_LEN)
endef
STEPS = vocab images encoder shards train generate
.DEFAULT_GOAL := all
include $(HERE)/settings.mk

all: $(OUT)/scores.txt $(OUT)/report.html $(OUT)/settings.txt
	@echo "flickr8k.mk: run folder $(OUT): settings.txt, scores.txt, report $(OUT)/report.html"

$(OUT)/tokenizer.json: $(TOKENS) $(call SPLIT,train) $(call stamp,vocab)
	$(BIN)/cap-tokenize vocab --min-count $(MIN_COUNT) --split $(call SPLIT,train) -o $@ $(TOKENS)

.SECONDEXPANSION:
$(OUT)/%.captions.mp: $(TOKENS) $(OUT)/tokenizer.json $$(call SPLIT,$$*)
	$(BIN)/cap-tokenize encode --tokenizer $(OUT)/tokenizer.json --split $(call SPLIT,$*) -o $@ $(TOKENS)

# The image lists: the JPEGs under IMAGES named in the train and dev splits, and those under
# TEST_IMAGES named in the test split. A wrong folder fails here, naming it.
# $(call image_list,FOLDER,VARIABLE,SPLITS,OUTPUT)
define image_list
	@test -d "$(1)" || { echo "flickr8k.mk: $(2)=$(1) is not a folder (it must hold the Flickr8k JPEGs)" >&2; exit 1; }
	@cat $(3) | tr -d '\r' > $(4).want
	@find "$(1)" -name '*.jpg' | sort | awk 'NR == FNR { want[$$0] = 1; next } \
	    { n = $$0; sub(/.*\//, "", n) } n in want' $(4).want - > $(4).tmp
	@n=$$(wc -l < $(4).tmp); m=$$(grep -c . $(4).want); rm -f $(4).want; \
	if [ "$$n" -eq 0 ]; then rm -f $(4).tmp; \
	    echo "flickr8k.mk: no image of $(notdir $(3)) under $(2)=$(1)" >&2; exit 1; fi; \
	echo "flickr8k.mk: $$n of the $$m images of $(notdir $(3)) found under $(2)=$(1)" >&2
	@mv $(4).tmp $(4)
endef

$(OUT)/images.txt: $(call SPLIT,train) $(call SPLIT,dev) $(call stamp,images)
	$(call image_list,$(IMAGES),IMAGES,$(call SPLIT,train) $(call SPLIT,dev),$@)

$(OUT)/test-images.txt: $(call SPLIT,test) $(call stamp,images)
	$(call image_list,$(TEST_IMAGES),TEST_IMAGES,$(call SPLIT,test),$@)

# The shards' settings and images; `make prepare` makes them before a scale-out run.
prepare: $(OUT)/images.txt $(OUT)/test-images.txt $(foreach s,$(STEPS),$(call stamp,$s))

FEATURE_DEPS = $(OUT)/images.txt $(call stamp,encoder) $(call stamp,shards) $(WEIGHTS_FILE)

$(OUT)/features.%.mp: $(FEATURE_DEPS)
	$(ENCODE) --shard $*/$(SHARDS) -o $@ < $(OUT)/images.txt

ifeq ($(HOSTS),)
$(OUT)/features.mp: $(foreach k,$(SHARD_IDS),$(OUT)/features.$(k).mp)
	cat $^ > $@.tmp && mv $@.tmp $@
else
# Every host sees the same paths (a shared folder) and has the tools under BIN.
$(OUT)/features.mp: $(FEATURE_DEPS)
	$(HERE)/parallel-encode.sh --parallel "$(PARALLEL)" --hosts "$(HOSTS)" --shards $(SHARDS) \
	    --list $(OUT)/images.txt -o $@ -- $(ENCODE)
endif

# The test images are encoded once, with the same encoder.
$(OUT)/test-features.mp: $(OUT)/test-images.txt $(call stamp,encoder) $(WEIGHTS_FILE)
	$(ENCODE) -o $@ < $<

$(OUT)/model.safetensors: $(OUT)/features.mp $(OUT)/train.captions.mp $(OUT)/dev.captions.mp $(call stamp,train)
	$(BIN)/cap-train --features $(OUT)/features.mp --captions $(OUT)/train.captions.mp \
	    --val-captions $(OUT)/dev.captions.mp --early-stop $(EARLY_STOP) --epochs $(EPOCHS) \
	    --batch $(BATCH) --lr $(LR) --embed $(EMBED) --hidden $(HIDDEN) --layers $(LAYERS) \
	    --dropout $(DROPOUT) --seed $(SEED) --precision $(TRAIN_PRECISION) --threads $(THREADS) \
	    --log $(OUT)/train-log.mp -o $@

$(OUT)/generated.mp: $(OUT)/model.safetensors $(OUT)/test-features.mp $(call stamp,generate)
	$(BIN)/cap-generate --model $(OUT)/model.safetensors --beam $(BEAM) --max-len $(MAX_LEN) \
	    --threads $(THREADS) -o $@ $(OUT)/test-features.mp

$(OUT)/scores.json: $(OUT)/generated.mp $(OUT)/test.captions.mp
	$(BIN)/cap-eval --references $(OUT)/test.captions.mp --json --per-image $< > $@.tmp && mv $@.tmp $@

$(OUT)/scores.txt: $(OUT)/generated.mp $(OUT)/test.captions.mp
	$(BIN)/cap-eval --references $(OUT)/test.captions.mp $< > $@.tmp && mv $@.tmp $@
	cat $@

$(OUT)/report.html: $(OUT)/generated.mp $(OUT)/test.captions.mp $(OUT)/scores.json \
                    $(OUT)/model.safetensors $(OUT)/settings.txt
	$(BIN)/cap-report --generated $(OUT)/generated.mp --references $(OUT)/test.captions.mp \
	    --scores $(OUT)/scores.json --model $(OUT)/model.safetensors --log $(OUT)/train-log.mp \
	    --settings $(OUT)/settings.txt --images $(TEST_IMAGES) --title "Flickr8k: $(OUT)" -o $@
	@echo "flickr8k.mk: report: $@"

summary:
	@$(HERE)/summary.sh $(RUNS)

clean:
	rm -rf $(OUT)

.PHONY: all clean prepare summary
.DELETE_ON_ERROR:
.SECONDARY:
