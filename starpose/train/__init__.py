"""Training: configs (the paper's recipes), the loop, checkpoints."""
from .config import RECIPES, TrainConfig, get_recipe, list_recipes
from .loop import TrainResult, lr_factor, train

__all__ = ["RECIPES", "TrainConfig", "TrainResult", "get_recipe", "list_recipes", "lr_factor", "train"]
