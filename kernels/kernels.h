/* The kernel layer's public header: every numeric primitive the methods and the harness use. */
#ifndef RB_KERNELS_H
#define RB_KERNELS_H

#include "kernels/error.h"
#include "kernels/dispatch.h"
#include "kernels/backend.h"
#include "kernels/gpu.h"
#include "kernels/pool.h"
#include "kernels/rng.h"
#include "kernels/param.h"
#include "kernels/fwht.h"
#include "kernels/hadamard.h"
#include "kernels/rotate.h"
#include "kernels/rotation.h"
#include "kernels/linalg.h"
#include "kernels/stats.h"
#include "kernels/vecops.h"
#include "kernels/quant.h"
#include "kernels/kv_quant.h"
#include "kernels/fpformats.h"
#include "kernels/codebook.h"
#include "kernels/rowcodec.h"
#include "kernels/rhtcodec.h"
#include "kernels/lloyd.h"

#endif
