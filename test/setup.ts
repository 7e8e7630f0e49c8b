// @peculiar/x509 depends on tsyringe, which needs the reflect-metadata polyfill loaded first.
import 'reflect-metadata';
