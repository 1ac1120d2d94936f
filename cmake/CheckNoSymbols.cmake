# Fails if the static library LIBRARY defines or references any symbol whose
# name contains FORBIDDEN (case-insensitive): how a ctest test keeps a layer
# from coming to depend on a library it must not link.
#   cmake -DNM=nm -DLIBRARY=librill_store.a -DFORBIDDEN=sqlite3_ -P CheckNoSymbols.cmake
foreach(var NM LIBRARY FORBIDDEN)
  if(NOT ${var})
    message(FATAL_ERROR "CheckNoSymbols.cmake: -D${var}=... is required")
  endif()
endforeach()

execute_process(COMMAND ${NM} -C ${LIBRARY} RESULT_VARIABLE rc OUTPUT_VARIABLE symbols ERROR_VARIABLE err)
# An empty listing would pass vacuously: an unreadable or empty archive is a
# failure, not a clean bill.
if(NOT rc EQUAL 0 OR symbols STREQUAL "")
  message(FATAL_ERROR "${NM} -C ${LIBRARY} failed (${rc}): ${err}")
endif()

string(TOLOWER "${FORBIDDEN}" forbidden)
string(REPLACE ";" "," symbols "${symbols}")  # a list separator, never part of a name we look for
string(REPLACE "\n" ";" lines "${symbols}")
set(found "")
foreach(line IN LISTS lines)
  string(TOLOWER "${line}" lower)
  string(FIND "${lower}" "${forbidden}" at)
  if(NOT at EQUAL -1)
    string(STRIP "${line}" line)
    list(APPEND found "${line}")
  endif()
endforeach()
if(found)
  list(LENGTH found n)
  list(SUBLIST found 0 10 shown)
  list(JOIN shown "\n  " shown)
  message(FATAL_ERROR "${LIBRARY}: ${n} symbol(s) matching '${FORBIDDEN}', e.g.\n  ${shown}")
endif()
message(STATUS "${LIBRARY}: no symbol matching '${FORBIDDEN}'")
