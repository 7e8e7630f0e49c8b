#!/usr/bin/env node
/**
 * The house's size limits (issue 12): lists TypeScript files over --file-lines lines and functions (function
 * declarations, methods, arrow functions, accessors) over --fn-lines lines, longest first.
 *
 *   node scripts/sizes.mjs [--file-lines 350] [--fn-lines 60] [dir-or-file ...]   (default: host hsm)
 *
 * A function's count spans its whole text, nested functions included (a `describe` callback counts its `it`s).
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return Number(value);
};
const fileLimit = option('--file-lines', 350);
const fnLimit = option('--fn-lines', 60);
const roots = args.length > 0 ? args : ['host', 'hsm'];

function tsFiles(p) {
  if (!fs.statSync(p).isDirectory()) return p.endsWith('.ts') ? [p] : [];
  return fs.readdirSync(p, { withFileTypes: true })
    .filter((e) => e.name !== 'node_modules' && e.name !== 'dist')
    .flatMap((e) => tsFiles(path.join(p, e.name)));
}

function nameOf(node) {
  if (node.name) return node.name.getText();
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))) return parent.name.getText();
  if (parent && ts.isCallExpression(parent)) return `${parent.expression.getText().slice(0, 40)}(…) callback`;
  return '<anonymous>';
}

const longFiles = [];
const longFns = [];
for (const file of roots.flatMap(tsFiles)) {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > fileLimit) longFiles.push([lines, file]);
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos) => src.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body) {
      const first = lineOf(node.getStart(src));
      const count = lineOf(node.end) - first + 1;
      if (count > fnLimit) longFns.push([count, `${file}:${first}`, nameOf(node)]);
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
}

const byCount = (a, b) => b[0] - a[0];
console.log(`files over ${fileLimit} lines: ${longFiles.length}`);
for (const [n, f] of longFiles.sort(byCount)) console.log(`  ${n}\t${f}`);
console.log(`functions over ${fnLimit} lines: ${longFns.length}`);
for (const [n, at, name] of longFns.sort(byCount)) console.log(`  ${n}\t${at}\t${name}`);
