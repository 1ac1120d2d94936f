// Shell completion: runs completions/test-completion.sh, which sources
// completions/rill.bash and checks what _rill offers (commands, options,
// stream names read from a real store, nothing when the store is missing).
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_SUITE(completion)

// Starts rill many times: left out of the sanitizer run (CMakeLists.txt).
BOOST_AUTO_TEST_CASE(bash_completion_offers_commands_options_and_store_names, *boost::unit_test::label("many_processes")) {
  const std::string command = std::string("bash '") + RILL_SOURCE_DIR + "/completions/test-completion.sh' '" +
                              RILL_BINARY + "'";
  int status = std::system(command.c_str());
  BOOST_REQUIRE(status != -1);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
