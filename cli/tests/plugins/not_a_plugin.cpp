// A shared library without the rill_plugin entry point.
extern "C" __attribute__((visibility("default"))) int not_a_rill_plugin() { return 42; }
