#!/usr/bin/env bash
# Translation catalogue for Matchmaker (科创对接): zh_CN is the default UI language, English the msgids.
#
#   scripts/i18n.sh extract   # scan matchmaker/**.py and templates/**.html → matchmaker/translations/messages.pot
#   scripts/i18n.sh update    # merge the .pot into zh/LC_MESSAGES/messages.po (zh_CN UI) (init on first run)
#   scripts/i18n.sh compile   # .po → .mo (commit both)
#   scripts/i18n.sh all       # extract + update + compile
#
# After `update`, fill the new empty msgstr entries (tests/core/test_i18n.py names any that are missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi

TDIR=matchmaker/translations
POT=$TDIR/messages.pot
# The catalogue lives in translations/zh, not zh_CN: Babel >= 2.12 parses the selector's "zh_CN" as
# zh_Hans_CN, and gettext then looks in zh_Hans_CN/ and zh/ only. "zh" is found by every Babel version.
LOCALES=(zh)

extract() {
  pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_ngettext:1,2 \
    --ignore-dirs '.* ._ tests seeds node_modules instance embeddings build dist __pycache__' \
    --no-location --sort-output --omit-header \
    --project matchmaker --msgid-bugs-address "" \
    -o "$POT" .
}
# Note: --no-location/--sort-output/--omit-header keep diffs small while several people add strings.

update() {
  [ -f "$POT" ] || extract
  for loc in "${LOCALES[@]}"; do
    if [ -f "$TDIR/$loc/LC_MESSAGES/messages.po" ]; then
      pybabel update -i "$POT" -d "$TDIR" -l "$loc" --no-fuzzy-matching --ignore-obsolete
    else
      pybabel init -i "$POT" -d "$TDIR" -l "$loc"
    fi
  done
}

compile() {
  pybabel compile -d "$TDIR" --statistics
}

case "${1:-}" in
  extract) extract ;;
  update) update ;;
  compile) compile ;;
  all) extract; update; compile ;;
  *) echo "usage: $0 {extract|update|compile|all}" >&2; exit 2 ;;
esac
