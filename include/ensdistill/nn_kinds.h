/* The choices of nn that a config names, as plain enums with no functions: the learning-rate
 * schedule (optim.h implements it), how an ensemble combines its members (ensemble.h) and the
 * precision (precision.h).
 * nn owns them; config.h includes this header alone, so what includes the config (src/data,
 * through dataset.h) does not compile against nn's modules. The names as the YAML spells them
 * are config_schedule_names and config_combine_names (config.h). */
#ifndef ENSDISTILL_NN_KINDS_H
#define ENSDISTILL_NN_KINDS_H

typedef enum { SCHEDULE_CONSTANT = 0, SCHEDULE_MULTISTEP = 1, SCHEDULE_COSINE = 2 } ScheduleKind;

typedef enum { COMBINE_LOGITS = 0, COMBINE_PROBS = 1 } Combine;

/* The arithmetic a model trains in (train.precision; precision.h checks the CPU for it). */
typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1 } Precision;

#endif
