# bash completion for rill.
# Installed as share/bash-completion/completions/rill; or `source` this file.
# Commands and options come from `rill --help` / `rill CMD --help` (so new
# commands complete without editing this file); stream and projection names
# come from the store named by --db (or $RILL_DB). Any failure completes
# nothing rather than printing an error.

# The rill executable the user is completing (a path like ./build/rill works).
_rill_exe() {
  local exe=${COMP_WORDS[0]}
  command -v "$exe" >/dev/null 2>&1 && printf '%s' "$exe" || printf 'rill'
}

# Subcommand names listed under "Subcommands:" in HELP_ARGS' help text.
_rill_help_commands() {
  "$(_rill_exe)" "$@" --help 2>/dev/null |
    awk -v want="Usage: rill $*" '/^Usage:/ && index($0, want) != 1 {exit} /^Subcommands:/ {on=1; next} on && /^  [a-z]/ {print $1} on && /^[^ ]/ {on=0}'
}

# Long options listed in HELP_ARGS' help text ("  -q,--quiet  ..." -> --quiet).
_rill_help_options() {
  "$(_rill_exe)" "$@" --help 2>/dev/null |
    grep -oE '^  (-[a-zA-Z],)?--[a-z][a-z0-9-]*' | sed -E 's/^ *(-[a-zA-Z],)?//'
}

# The --db the command line names, as arguments to pass on ("--db DIR"), or none.
_rill_db_args() {
  local i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in
      --db) printf '%s\n%s\n' --db "${COMP_WORDS[i + 1]}"; return ;;
      --db=*) printf '%s\n%s\n' --db "${COMP_WORDS[i]#--db=}"; return ;;
    esac
  done
}

# Values of FIELD in each JSON line of `rill --json ARGS`, tolerating failure.
_rill_json_field() {
  local field=$1; shift
  local -a db
  mapfile -t db < <(_rill_db_args)
  "$(_rill_exe)" "${db[@]}" --json --no-progress "$@" 2>/dev/null |
    sed -nE "s/.*\"$field\":\"([^\"]*)\".*/\1/p"
}

_rill_streams() { _rill_json_field stream streams; }
_rill_projections() {
  { _rill_json_field name project list; _rill_json_field projection project list; } | sort -u
}

# The store config's keys (rill-config(1)).
_rill_config_keys() { printf '%s\n' durability shards snapshot-interval actor-bound plugins projections; }

# File names for the word being completed (compopt: "/" after directories).
_rill_files() {
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

_rill() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()

  # Options whose value is a directory or a file.
  case $prev in
    --db) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return 0 ;;
    --file | --output | -o | --migrations | --plugin) _rill_files; return 0 ;;
    --set) compopt -o nospace 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -W "$(_rill_config_keys | sed 's/$/=/')" -- "$cur"); return 0 ;;
    --to) mapfile -t COMPREPLY < <(compgen -W "$(_rill_streams)" -- "$cur"); return 0 ;;
    --expect) mapfile -t COMPREPLY < <(compgen -W "any no-stream exists" -- "$cur"); return 0 ;;
    --color) mapfile -t COMPREPLY < <(compgen -W "auto always never" -- "$cur"); return 0 ;;
    --category) mapfile -t COMPREPLY < <(compgen -W "$(_rill_streams | sed 's/-.*//' | sort -u)" -- "$cur")
      return 0 ;;
  esac

  # The command (and for groups like `project`, its subcommand) so far, and how
  # many positional words follow it.
  local cmd="" sub="" positional=0 i word
  for ((i = 1; i < COMP_CWORD; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      --db | --plugin | --set | --color) ((i++)) ;;
      -*) ;;
      *)
        if [[ -z $cmd ]]; then cmd=$word
        elif [[ $cmd == project || $cmd == snapshot || $cmd == migrations || $cmd == config ]] && [[ -z $sub ]]; then sub=$word
        else ((positional++)); fi ;;
    esac
  done

  if [[ $cur == -* ]]; then
    local opts
    if [[ -z $cmd ]]; then opts=$(_rill_help_options)
    else opts="$(_rill_help_options $cmd $sub) $(_rill_help_options)"; fi
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    return 0
  fi

  local words=""
  case $cmd in
    "") words=$(_rill_help_commands) ;;
    project | snapshot | migrations)
      if [[ -z $sub ]]; then words=$(_rill_help_commands "$cmd")
      elif [[ $cmd == project && $sub == add ]]; then
        _rill_files; return 0
      elif [[ $cmd == project && $positional == 0 ]]; then words=$(_rill_projections)
      elif [[ $cmd == snapshot && $positional == 0 ]]; then words=$(_rill_streams)
      fi ;;
    config)
      if [[ -z $sub ]]; then words=$(_rill_help_commands config)
      elif [[ $sub != list && $positional == 0 ]]; then words=$(_rill_config_keys)
      elif [[ $sub == set && $positional == 1 ]]; then
        case ${COMP_WORDS[COMP_CWORD - 1]} in
          durability) words="sync async" ;;
          shards | snapshot-interval) words="auto" ;;
          plugins) _rill_files; return 0 ;;
          projections) words=$(_rill_projections) ;;
        esac
      fi ;;
    query) ((positional == 0)) && words=$(_rill_projections) ;;
    show | state | delete | metadata) ((positional == 0)) && words=$(_rill_streams) ;;
    append) ((positional == 0)) && words=$(_rill_streams) ;;
    import | backup) _rill_files; return 0 ;;
  esac
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  return 0
}

complete -F _rill rill
