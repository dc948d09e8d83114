"""The names a config may choose from, kept here at the bottom of the package.

Why here: the schemas check values against these names, and the modules that act on them (the
execution paths, Conv4, the augmentations, the trainer) read them from here, so a name is written once
and no schema has to import the module that uses it.
"""

# algorithm.batching: how the tasks of a meta-batch are run (metalearn/execution)
BATCHING = ("vmap", "loop", "threads", "auto")
# algorithm.batch_norm: each task's own batch statistics, or standard running statistics
BATCH_NORM_MODES = ("transductive", "running")
# algorithm.evaluation (Reptile): the query set in one batch, or each query image alone with the support set
REPTILE_EVALUATION = ("transductive", "non_transductive")
# algorithm.inner_optimizer (Reptile)
INNER_OPTIMIZERS = ("sgd", "adam")
# algorithm.inner_data (Reptile): what the inner loop fits in meta-training
INNER_DATA = ("all", "support")
# model.memory_format (Conv4)
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
CONV4_DOWNSAMPLING = ("pool", "stride")
# dataset.augment: natural images, and Omniglot's characters
NATURAL_AUGMENTS = ("none", "standard")
CHARACTER_AUGMENTS = ("none", "affine")
# dataset.reward (navigation2d): minus the distance to the goal, or minus its square
NAVIGATION_REWARDS = ("distance", "squared_distance")
# model.activation (MLP)
MLP_ACTIVATIONS = ("relu", "tanh")
# dataset.split (Omniglot)
OMNIGLOT_SPLITS = ("vinyals", "lake", "minimal1", "minimal2")
# dataset.source (mini-ImageNet)
MINI_IMAGENET_SOURCES = ("auto", "pickle", "csv")
# dataset.benchmark (video): each few-shot video benchmark and its folder of split lists in
# metalearn/data/video_splits/ (Kinetics-100 and SSv2-small: CMN's splits; SSv2-full: OTAM's; UCF101, HMDB51: ARN's)
VIDEO_BENCHMARKS = {
    "kinetics100": "kinetics100_cmn",
    "ssv2_small": "ssv2_cmn",
    "ssv2_full": "ssv2_otam",
    "ucf101": "ucf101_arn",
    "hmdb51": "hmdb51_arn",
}
# dataset.channels (folder)
FOLDER_CHANNELS = ("auto", "1", "3")
# device.name
DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")
# device.precision (metalearn.execution.precision)
PRECISIONS = ("fp32", "bf16", "fp16")
# trainer.optimizer and trainer.scheduler
OPTIMIZERS = ("adam", "sgd")
SCHEDULERS = ("none", "cosine", "step")
# algorithm.distance (ProtoNet)
PROTO_DISTANCES = ("euclidean", "cosine")
# algorithm.head (Baseline): linear (Baseline) or cosine (Baseline++)
BASELINE_HEADS = ("linear", "cosine")
# logger.mode (wandb)
WANDB_MODES = ("offline", "online")
# mode and eval.protocol
MODES = ("train", "eval")
EVAL_PROTOCOLS = ("episodes", "omniglot_runs")
