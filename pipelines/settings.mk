# Settings stamps for the pipelines (included by flickr8k.mk and shapes.mk).
#
# Each step lists the settings it uses in a variable STAMP_<step> (one KEY=VALUE a line).
# While the makefile is read, $(OUT)/settings/<step> is rewritten only when that text differs
# from what the file holds, so its modification time changes only when a value changes. A step
# that depends on its stamp reruns when one of its settings changed and not otherwise, and
# everything downstream of it follows through the ordinary file dependencies.
#
# $(OUT)/settings.txt gathers every step's settings (the run's record, beside scores.txt).
# `make -n` writes nothing: a stamp whose settings changed is then only taken as out of date
# (through FORCE), so that the dry run shows what would rerun and the next real run still sees
# the change.

SETTINGS_DIR = $(OUT)/settings
cap_dry_run := $(findstring n,$(firstword -$(MAKEFLAGS)))
cap_same  = $(and $(findstring x$1,x$2),$(findstring x$2,x$1))
cap_write = $(shell mkdir -p $(SETTINGS_DIR))$(file >$(SETTINGS_DIR)/$1,$(STAMP_$1))
cap_stamp = $(if $(call cap_same,$(file <$(SETTINGS_DIR)/$1),$(STAMP_$1)),,$(if $(cap_dry_run),$(eval $(SETTINGS_DIR)/$1: FORCE),$(call cap_write,$1)))
# The stamp of a step, as a prerequisite.
stamp = $(SETTINGS_DIR)/$1

# Only reached for a stamp taken as out of date under make -n, where it is printed, not run.
$(SETTINGS_DIR)/%:
	@echo "settings of step $* changed"
FORCE:
.PHONY: FORCE

ifeq ($(filter clean summary print-%,$(MAKECMDGOALS)),)
$(foreach s,$(STEPS),$(call cap_stamp,$s))
endif

$(OUT)/settings.txt: $(foreach s,$(STEPS),$(SETTINGS_DIR)/$s)
	for s in $(STEPS); do sed "s/^/$$s./" $(SETTINGS_DIR)/$$s; done > $@.tmp && mv $@.tmp $@
