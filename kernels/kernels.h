/* The kernel layer's public header: every numeric primitive the methods and the harness use. */
#ifndef RB_KERNELS_H
#define RB_KERNELS_H

#include "kernels/error.h"
#include "kernels/dispatch.h"
#include "kernels/pool.h"
#include "kernels/rng.h"
#include "kernels/fwht.h"
#include "kernels/lloyd.h"

#endif
