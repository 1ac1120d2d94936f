# Domain plugins (core/plugin.h). Included by the root CMakeLists.txt after
# the `rill` target exists.
#
# The plugin and the host share C++ objects, so they must share one copy of
# core/, readmodel/ and store/: `rill` exports its symbols (ENABLE_EXPORTS =
# -rdynamic) and links ALL of rill_core, rill_readmodel and rill_store (whole
# archive), so any function a plugin calls is there even if rill itself never
# uses it. Plugins
# link only headers and the shared third-party libraries (rill_plugin_api),
# never the static rill libraries: a second copy would split the state.
include(GNUInstallDirs)
target_link_libraries(rill_core PUBLIC ${CMAKE_DL_LIBS})  # core/plugin.cpp: dlopen
set_target_properties(rill PROPERTIES ENABLE_EXPORTS ON)
target_link_options(rill PRIVATE "LINKER:--whole-archive" "$<TARGET_FILE:rill_core>" "$<TARGET_FILE:rill_readmodel>"
  "$<TARGET_FILE:rill_store>" "LINKER:--no-whole-archive")

# What a plugin compiles against: rill's headers and the third-party headers
# and shared libraries (installed as rill::plugin). SQLite too: a projection
# handler gets the read model's connection (SqliteDb::handle()).
add_library(rill_plugin_api INTERFACE)
target_include_directories(rill_plugin_api INTERFACE
  "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/rill>")
target_link_libraries(rill_plugin_api INTERFACE rill_thirdparty SQLite::SQLite3)

# rill_add_plugin(NAME SOURCES...): lib<NAME>.so, a plugin for `rill --plugin`.
# Hidden visibility: only the rill_plugin() entry point is exported, so none
# of the plugin's own functions binds to a same-named one in the host.
function(rill_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  target_link_libraries(${name} PRIVATE rill_plugin_api rill_warnings)
  set_target_properties(${name} PROPERTIES PREFIX "lib" CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
endfunction()

# The sample domains, built a second time as plugins from the same sources
# (they stay compiled into `rill` too). CI loads them into a rill started
# with --no-builtin-domains (cli/tests/plugin_test.cpp).
set(_sample_projection_src ${CMAKE_SOURCE_DIR}/domains/sample_projections.cpp
  ${CMAKE_SOURCE_DIR}/domains/bank/projections/transfers.cpp)
file(GLOB _bank_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/domains/bank/*.cpp)
file(GLOB _inventory_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/domains/inventory/*.cpp)
rill_add_plugin(rill_bank ${CMAKE_SOURCE_DIR}/plugins/bank.cpp ${_bank_src} ${_sample_projection_src})
rill_add_plugin(rill_inventory ${CMAKE_SOURCE_DIR}/plugins/inventory.cpp ${_inventory_src} ${_sample_projection_src})
foreach(p rill_bank rill_inventory)
  target_include_directories(${p} PRIVATE ${CMAKE_BINARY_DIR}/generated)  # builtin_projections.inc
endforeach()

# Test-only plugins: a wrong ABI version, a library that is no plugin, one
# whose register functions throw and one that crashes.
if(RILL_BUILD_TESTS)
  rill_add_plugin(rill_test_bad_abi ${CMAKE_SOURCE_DIR}/cli/tests/plugins/bad_abi.cpp)
  rill_add_plugin(rill_test_not_a_plugin ${CMAKE_SOURCE_DIR}/cli/tests/plugins/not_a_plugin.cpp)
  rill_add_plugin(rill_test_throwing ${CMAKE_SOURCE_DIR}/cli/tests/plugins/throwing.cpp)
  rill_add_plugin(rill_test_crashing ${CMAKE_SOURCE_DIR}/cli/tests/plugins/crashing.cpp)
  if(TARGET cli_tests)
    add_dependencies(cli_tests rill_bank rill_inventory rill_test_bad_abi rill_test_not_a_plugin rill_test_throwing
      rill_test_crashing)
    target_compile_definitions(cli_tests PRIVATE
      RILL_BANK_PLUGIN="$<TARGET_FILE:rill_bank>" RILL_INVENTORY_PLUGIN="$<TARGET_FILE:rill_inventory>"
      RILL_BAD_ABI_PLUGIN="$<TARGET_FILE:rill_test_bad_abi>" RILL_NOT_A_PLUGIN="$<TARGET_FILE:rill_test_not_a_plugin>"
      RILL_THROWING_PLUGIN="$<TARGET_FILE:rill_test_throwing>" RILL_CRASHING_PLUGIN="$<TARGET_FILE:rill_test_crashing>")
  endif()
endif()

# core/plugin.h states the release a plugin was built against; keep it honest.
file(STRINGS ${CMAKE_SOURCE_DIR}/core/plugin.h _rill_version_line REGEX "^#define RILL_VERSION ")
if(NOT _rill_version_line MATCHES "\"${PROJECT_VERSION}\"")
  message(FATAL_ERROR "core/plugin.h: RILL_VERSION must be \"${PROJECT_VERSION}\" (the project version)")
endif()
