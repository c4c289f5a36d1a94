from .io import atomic_save, atomic_write, load_checkpoint_file

__all__ = ['atomic_save', 'atomic_write', 'load_checkpoint_file']
