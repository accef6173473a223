# The demo experiment graph: tokenize, encode, train, generate, evaluate, report on
# examples/shapes (48 drawn images of coloured shapes, five captions each; see
# scripts/make-shapes.py). The encoder is a randomly initialised ResNet-152 (no pretrained
# weights are downloaded); its features still tell colours apart, so the decoder learns
# real captions.
#   make -f pipelines/shapes.mk [BIN=build/bin] [OUT=build/demo] [EPOCHS=150] [BEAM=3]
#   make -f pipelines/shapes.mk summary [RUNS=build]   a table of the runs under RUNS
# Every step depends on the settings it uses (pipelines/settings.mk): changing BEAM reruns
# only generation, evaluation and the report; EPOCHS the training and what follows; WEIGHTS or
# PREPROCESS the features too. OUT holds settings.txt, scores.txt and report.html.
BIN    ?= build/bin
OUT    ?= build/demo
DATA   ?= examples/shapes
WEIGHTS ?= random:1
PREPROCESS ?= --squash 224
MIN_COUNT ?= 1
EPOCHS ?= 150
BATCH  ?= 16
EMBED  ?= 64
HIDDEN ?= 128
SEED   ?= 1
BEAM   ?= 3
THREADS ?= $(shell nproc 2>/dev/null || echo 1)
RUNS   ?= $(patsubst %/,%,$(dir $(OUT)))
HERE   := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
ENCODE  = $(BIN)/cap-encode --weights $(WEIGHTS) $(PREPROCESS) --basename --threads $(THREADS)
WEIGHTS_FILE = $(filter-out random random:%,$(WEIGHTS))

define STAMP_vocab
DATA=$(abspath $(DATA))
MIN_COUNT=$(MIN_COUNT)
endef
define STAMP_encoder
WEIGHTS=$(WEIGHTS)
PREPROCESS=$(PREPROCESS)
endef
define STAMP_train
EPOCHS=$(EPOCHS)
BATCH=$(BATCH)
EMBED=$(EMBED)
HIDDEN=$(HIDDEN)
SEED=$(SEED)
endef
define STAMP_generate
BEAM=$(BEAM)
endef
STEPS = vocab encoder train generate
.DEFAULT_GOAL := all
include $(HERE)/settings.mk

all: $(OUT)/scores.txt $(OUT)/test-captions.txt $(OUT)/report.html $(OUT)/settings.txt
	@echo "shapes.mk: run folder $(OUT): settings.txt, scores.txt, test-captions.txt"
	@echo "shapes.mk: report: $(OUT)/report.html"

$(OUT)/tokenizer.json: $(DATA)/captions.token.txt $(DATA)/train.txt $(call stamp,vocab)
	$(BIN)/cap-tokenize vocab --min-count $(MIN_COUNT) --split $(DATA)/train.txt -o $@ $<

$(OUT)/%.captions.mp: $(DATA)/captions.token.txt $(DATA)/%.txt $(OUT)/tokenizer.json
	$(BIN)/cap-tokenize encode --tokenizer $(OUT)/tokenizer.json --split $(DATA)/$*.txt -o $@ $<

# Features of the images of a split (train.txt, test.txt), each image encoded once;
# --basename so records name images as the caption file does.
$(OUT)/features.mp: $(DATA)/train.txt $(call stamp,encoder) $(WEIGHTS_FILE)
	sed 's|^|$(DATA)/|' $< | $(ENCODE) -o $@
$(OUT)/test-features.mp: $(DATA)/test.txt $(call stamp,encoder) $(WEIGHTS_FILE)
	sed 's|^|$(DATA)/|' $< | $(ENCODE) -o $@

$(OUT)/model.safetensors: $(OUT)/features.mp $(OUT)/train.captions.mp $(call stamp,train)
	$(BIN)/cap-train --features $(OUT)/features.mp --captions $(OUT)/train.captions.mp \
	    --epochs $(EPOCHS) --batch $(BATCH) --embed $(EMBED) --hidden $(HIDDEN) --seed $(SEED) \
	    --threads $(THREADS) --log $(OUT)/train-log.mp -o $@

$(OUT)/generated.mp: $(OUT)/model.safetensors $(OUT)/test-features.mp $(call stamp,generate)
	$(BIN)/cap-generate --model $(OUT)/model.safetensors --beam $(BEAM) --threads $(THREADS) \
	    -o $@ $(OUT)/test-features.mp

$(OUT)/test-captions.txt: $(OUT)/model.safetensors $(OUT)/test-features.mp $(call stamp,generate)
	$(BIN)/cap-generate --model $(OUT)/model.safetensors --beam $(BEAM) --threads $(THREADS) \
	    --text -o $@ $(OUT)/test-features.mp
	cat $@

$(OUT)/scores.json: $(OUT)/generated.mp $(OUT)/test.captions.mp
	$(BIN)/cap-eval --references $(OUT)/test.captions.mp --json --per-image $< > $@.tmp && mv $@.tmp $@

$(OUT)/scores.txt: $(OUT)/generated.mp $(OUT)/test.captions.mp
	$(BIN)/cap-eval --references $(OUT)/test.captions.mp $< > $@.tmp && mv $@.tmp $@
	cat $@

$(OUT)/report.html: $(OUT)/generated.mp $(OUT)/test.captions.mp $(OUT)/scores.json \
                    $(OUT)/model.safetensors $(OUT)/settings.txt
	$(BIN)/cap-report --generated $(OUT)/generated.mp --references $(OUT)/test.captions.mp \
	    --scores $(OUT)/scores.json --model $(OUT)/model.safetensors --log $(OUT)/train-log.mp \
	    --settings $(OUT)/settings.txt --images $(DATA) --title "shapes demo: $(OUT)" -o $@

summary:
	@$(HERE)/summary.sh $(RUNS)

clean:
	rm -rf $(OUT)

.PHONY: all clean summary
.DELETE_ON_ERROR:
.SECONDARY:
