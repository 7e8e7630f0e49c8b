import { describe, expect, it } from 'vitest';
import { BUILTIN_CAPABILITIES, planLinks, shadowed } from './capabilities.js';

const FS_IMPORTS = ['wasi:filesystem/types@0.2.3', 'wasi:filesystem/preopens@0.2.3'];

describe('wasi:filesystem linking', () => {
  it('links the data directory when granted, even next to stdio\'s empty placeholder', () => {
    const plan = planLinks('m', [...FS_IMPORTS, 'wasi:cli/stdout@0.2.3'], ['wasi:cli/stdio', 'wasi:filesystem/data'], BUILTIN_CAPABILITIES);
    if (!plan.ok) throw new Error(plan.message);
    const names = plan.capabilities.map((c) => c.name).sort();
    expect(names).toEqual(['wasi:cli/stdio', 'wasi:filesystem/data']);
    const stdio = plan.capabilities.find((c) => c.name === 'wasi:cli/stdio')!;
    expect(shadowed(stdio, plan.capabilities).sort()).toEqual(['wasi:filesystem/preopens', 'wasi:filesystem/types']);
  });

  it('keeps stdio\'s placeholder (no preopens) when only stdio is granted', () => {
    const plan = planLinks('m', FS_IMPORTS, ['wasi:cli/stdio'], BUILTIN_CAPABILITIES);
    if (!plan.ok) throw new Error(plan.message);
    expect(plan.capabilities.map((c) => c.name)).toEqual(['wasi:cli/stdio']);
    expect(shadowed(plan.capabilities[0]!, plan.capabilities)).toEqual([]);
  });

  it('names wasi:filesystem/data when nothing providing the filesystem is granted', () => {
    expect(planLinks('m', FS_IMPORTS, [], BUILTIN_CAPABILITIES)).toEqual({
      ok: false,
      message: 'module "m" imports "wasi:filesystem/types@0.2.3", which is not granted: grant "wasi:filesystem/data" is missing',
    });
  });
});
