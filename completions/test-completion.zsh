# Drives completions/_rill outside a real completion widget: compadd,
# _describe, _files and _directories are replaced by stubs that print what
# they were given. Run by test-completion.sh when zsh is installed:
#   RILL=... DB=... zsh -f test-completion.zsh
compadd() { if [[ $1 == -a ]]; then print -r -- "${(P)2}"; else print -r -- "$*"; fi }
_describe() { print -r -- "${#${(P@)4}} commands" }
_files() { print files }
_directories() { print dirs }
source ${0:A:h}/_rill >/dev/null
t() { words=("$@"); CURRENT=$#words; _rill }
t $RILL --db $DB show ""
t $RILL --db $DB streams --category ""
t $RILL --db $DB append account-1 X --expect ""
t $RILL --db "" 
t $RILL --db $DB show account-1 ""
t $RILL --db $DB/missing show ""
t $RILL --db $DB nonesuch ""
t $RILL ""
print end
