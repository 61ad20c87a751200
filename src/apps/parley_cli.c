/* parley_cli.c — the `parley` command-line client; see apps/cli/cli.h. */
#include "apps/cli/cli.h"

int main(int argc, char **argv) { return parley_cli_main(argc, argv); }
