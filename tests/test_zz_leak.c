#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
void *volatile sink_;
Test(zz, leak) { char *p = malloc(100); memset(p, 1, 100); sink_ = p; sink_ = NULL; cr_assert(1); }
