# Install rules: the `rill` binary, man pages, shell completions, and rill as
# a library — its public headers, the static libraries, a CMake package
# (rill::store, rill::readmodel, rill::core, rill::domains) and a pkg-config
# file (rill.pc).
# Included at the end of the root CMakeLists.txt, after every target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# Headers keep their folder ("store/event_store.h") under include/rill, so an
# application's includes read exactly like rill's own and nothing lands loose
# in include/.
set(RILL_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/rill)
set(RILL_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/rill)

# In the build tree the source root is the include directory; installed it is
# include/rill. (The root CMakeLists sets the plain build path; an exported
# target may not carry a source-tree path, so it is restated here.)
set_property(TARGET rill_store PROPERTY INTERFACE_INCLUDE_DIRECTORIES
  "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}>" "$<INSTALL_INTERFACE:${RILL_INSTALL_INCLUDEDIR}>")

set_target_properties(rill_store PROPERTIES EXPORT_NAME store)
set_target_properties(rill_readmodel PROPERTIES EXPORT_NAME readmodel)
set_target_properties(rill_core PROPERTIES EXPORT_NAME core)
set_target_properties(rill_domains PROPERTIES EXPORT_NAME domains)
# Internal interface targets the libraries link: they must be in the export
# set too. rill::thirdparty carries the dependencies every library shares
# (LMDB, fmt, RapidJSON, threads; SQLite is linked by rill::readmodel and
# the code that calls it); rill::warnings only reaches consumers as link-only
# (empty unless built with RILL_SANITIZE), never as compile flags.
set_target_properties(rill_thirdparty PROPERTIES EXPORT_NAME thirdparty)
set_target_properties(rill_warnings PROPERTIES EXPORT_NAME warnings)
# rill::plugin: what a domain plugin compiles against (headers and shared
# third-party libraries, never the static rill libraries; core/plugin.h).
set_target_properties(rill_plugin_api PROPERTIES EXPORT_NAME plugin)

install(TARGETS rill RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The sample domains as plugins: lib/rill/plugins/librill_bank.so, librill_inventory.so.
install(TARGETS rill_bank rill_inventory LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/rill/plugins)
install(TARGETS rill_store rill_readmodel rill_core rill_domains rill_thirdparty rill_warnings rill_plugin_api
  EXPORT rillTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${RILL_INSTALL_INCLUDEDIR})
install(EXPORT rillTargets NAMESPACE rill:: DESTINATION ${RILL_INSTALL_CMAKEDIR})

# Only the public contract: a folder's internal/ headers (and util/, shared
# by the libraries' sources alone) are how rill is built, not what an
# application calls, and are never installed. scripts/check-install.sh
# compares the installed set with testdata/installed_headers.txt and compiles
# each installed header on its own.
foreach(folder store readmodel core domains)
  if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/${folder})
    install(DIRECTORY ${folder}/ DESTINATION ${RILL_INSTALL_INCLUDEDIR}/${folder}
      FILES_MATCHING PATTERN "*.h" PATTERN "tests" EXCLUDE PATTERN "internal" EXCLUDE)
  endif()
endforeach()

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/rillConfig.cmake.in
  ${CMAKE_BINARY_DIR}/rillConfig.cmake INSTALL_DESTINATION ${RILL_INSTALL_CMAKEDIR})
# 0.x: a minor release may change the API, so only the same minor matches.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/rillConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/rillConfig.cmake ${CMAKE_BINARY_DIR}/rillConfigVersion.cmake
  DESTINATION ${RILL_INSTALL_CMAKEDIR})

# pkg-config: only the libraries that have sources are real archives (core/
# and domains/ are empty interface targets until they land); dependents first.
set(RILL_PC_LIBS "")
foreach(lib rill_domains rill_core rill_readmodel rill_store)
  get_target_property(_type ${lib} TYPE)
  if(_type STREQUAL "STATIC_LIBRARY")
    string(APPEND RILL_PC_LIBS " -l${lib}")
  endif()
endforeach()
file(RELATIVE_PATH RILL_PC_PREFIX_FROM_PCDIR /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/rill.pc.in ${CMAKE_BINARY_DIR}/rill.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/rill.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(DIRECTORY man/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 FILES_MATCHING PATTERN "*.1")
if(EXISTS ${CMAKE_SOURCE_DIR}/completions/rill.bash)
  install(FILES completions/rill.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
    RENAME rill)
endif()
if(EXISTS ${CMAKE_SOURCE_DIR}/completions/_rill)
  install(FILES completions/_rill DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/site-functions)
endif()
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
